{#- HAProxy: the local entry point to the Patroni leader (5000), the replicas
    (5001) and every node's Airflow API server (api_port). -#}
include:
  - airflow_ha.validate
  - .install
  - .config
  - .service
