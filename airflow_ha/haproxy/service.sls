# haproxy.service: not built yet.
