{#- PostgreSQL managed by Patroni (DCS: airflow_ha.etcd), plus Airflow's
    role and database, created on the leader. -#}
include:
  - airflow_ha.validate
  - airflow_ha.etcd
  - .install
  - .config
  - .service
