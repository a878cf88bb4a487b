{#- airflow_ha.orch.restore, the restoring node (airflow_ha:restore on the
    command line): config.yml with the restore bootstrap (pgBackRest restores
    the empty data directory, PostgreSQL replays WAL to the target and
    promotes: Patroni's custom bootstrap), Patroni started, and the wait for
    it to lead (bounded by restore:timeout). -#}
{%- from "airflow_ha/map.jinja" import ah with context %}
{%- set p = ah.postgresql.patroni %}
include:
  - airflow_ha.postgresql.config

airflow_ha-pgbackrest-restore-bootstrap-config:
  test.check_pillar:
    - present:
      - airflow_ha:restore:target_time
    - failhard: true
    - require_in:
      - file: airflow_ha-postgresql-patroni-config

airflow_ha-pgbackrest-restore-patroni-started:
  service.running:
    - name: {{ p.service }}
    - require:
      - file: airflow_ha-postgresql-patroni-config
      - file: airflow_ha-postgresql-data-dir

airflow_ha-pgbackrest-restore-leader:
  patroni.leader_running:
    - name: {{ ah.cluster_name }}
    - timeout: {{ ah.restore.timeout }}
    - interval: 5
    - config_file: {{ p.config_file }}
    - require:
      - service: airflow_ha-pgbackrest-restore-patroni-started
