# pgbouncer.service: not built yet.
