# pgbouncer.clean: not built yet.
