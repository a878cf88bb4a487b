# keepalived.install: not built yet.
