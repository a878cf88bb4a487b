{#- airflow_ha.orch.restore, db nodes, once the cluster is whole: the
    restore's marker removed, so a plain state.apply manages Patroni again. -#}
{%- from "airflow_ha/map.jinja" import ah with context %}
airflow_ha-pgbackrest-restore-marker-absent:
  file.absent:
    - name: {{ ah.pgbackrest.restore_marker }}
