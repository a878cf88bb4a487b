# haproxy.install: not built yet.
