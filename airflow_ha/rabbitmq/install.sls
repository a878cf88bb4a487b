# rabbitmq.install: not built yet.
