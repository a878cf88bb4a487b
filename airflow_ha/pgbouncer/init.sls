{#- PgBouncer (optional, airflow_ha:pgbouncer:enabled): transaction pooling
    between Airflow and the local HAProxy's leader port. -#}
include:
  - airflow_ha.validate
  - airflow_ha.haproxy
  - .install
  - .config
  - .service
