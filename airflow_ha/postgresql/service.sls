# postgresql.service: not built yet.
