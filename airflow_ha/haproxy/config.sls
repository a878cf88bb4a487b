# haproxy.config: not built yet.
