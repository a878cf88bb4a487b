# keepalived.clean: not built yet.
