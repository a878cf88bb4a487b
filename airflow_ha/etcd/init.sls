{#- etcd: the DCS of Patroni, one member per `db` node. -#}
include:
  - airflow_ha.validate
  - .install
  - .config
  - .service
