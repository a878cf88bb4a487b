{#- airflow_ha.orch.restore, db nodes: Patroni stopped (the leader now),
    then the data directory set aside (restore_aside: kept until the
    operator removes it) and an empty one in its place. Nothing is deleted. -#}
{%- from "airflow_ha/map.jinja" import ah with context %}
{%- set pg = ah.postgresql %}
airflow_ha-pgbackrest-restore-stop-patroni:
  service.dead:
    - name: {{ pg.patroni.service }}

airflow_ha-pgbackrest-restore-set-aside:
  file.rename:
    - name: {{ ah.pgbackrest.restore_aside }}
    - source: {{ pg.data_dir }}
    - require:
      - service: airflow_ha-pgbackrest-restore-stop-patroni

airflow_ha-pgbackrest-restore-empty-data-dir:
  file.directory:
    - name: {{ pg.data_dir }}
    - user: postgres
    - group: postgres
    - mode: "0700"
    - require:
      - file: airflow_ha-pgbackrest-restore-set-aside
