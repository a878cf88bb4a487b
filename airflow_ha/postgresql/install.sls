# postgresql.install: not built yet.
