# pgbouncer.config: not built yet.
