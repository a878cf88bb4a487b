# postgresql.config: not built yet.
