{#- RabbitMQ: one cluster over every `broker` node, Celery's broker.
    config comes BEFORE install: Debian's postinst starts the node at once,
    and with the cookie, rabbitmq.conf (classic_config peers) and
    enabled_plugins already there it joins the cluster on that first start. -#}
include:
  - airflow_ha.validate
  - .config
  - .install
  - .service
  - .cluster
