{#- airflow_ha.orch.restore, the other db nodes (empty data directories):
    Patroni started; it clones the restored leader — from the backup the
    orchestration took right after the restore (create_replica_methods:
    pgbackrest, then pg_basebackup). -#}
{%- from "airflow_ha/map.jinja" import ah with context %}
airflow_ha-pgbackrest-restore-replica-started:
  service.running:
    - name: {{ ah.postgresql.patroni.service }}
