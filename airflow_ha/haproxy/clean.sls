# haproxy.clean: not built yet.
