{#- keepalived: a floating address (airflow_ha:vip) held by a db node whose
    HAProxy is up. Included only when vip.enabled. -#}
include:
  - airflow_ha.validate
  - airflow_ha.haproxy
  - .install
  - .config
  - .service
