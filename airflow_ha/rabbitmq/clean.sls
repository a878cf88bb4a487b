# rabbitmq.clean: not built yet.
