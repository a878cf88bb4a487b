{#- airflow_ha.orch.restore: the restored cluster has one leader and every
    db node runs (a replica cloning from the repository is not running yet).
    Then the restore's marker goes (done.sls). -#}
{%- from "airflow_ha/map.jinja" import ah with context %}
airflow_ha-pgbackrest-restore-members:
  patroni.members_running:
    - name: {{ ah.cluster_name }}
    - members: {{ ah.pgbackrest.db_nodes | json }}
    - timeout: {{ ah.restore.timeout }}
    - interval: 5
    - config_file: {{ ah.postgresql.patroni.config_file }}
