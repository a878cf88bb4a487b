# keepalived.service: not built yet.
