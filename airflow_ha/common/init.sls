{#- Every node: name resolution, package sources, time. config comes before
    install because the apt proxy must be in place before the first package. -#}
include:
  - airflow_ha.validate
  - .config
  - .install
  - .service
