# keepalived.config: not built yet.
