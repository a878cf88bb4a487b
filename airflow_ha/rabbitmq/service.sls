# rabbitmq.service: not built yet.
