# csync2.install: not built yet.
