{#- Airflow on this node: install (venv, pinned version, constraints),
    config (airflow.cfg key by key), db (schema migrated once, admin user),
    service (units per role, the dag-processor under an etcd lock). -#}
include:
  - airflow_ha.validate
  - .install
  - .config
  - .db
  - .service
