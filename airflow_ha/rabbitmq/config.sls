# rabbitmq.config: not built yet.
