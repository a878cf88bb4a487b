# postgresql.clean: not built yet.
