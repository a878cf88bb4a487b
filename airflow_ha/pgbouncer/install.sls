# pgbouncer.install: not built yet.
