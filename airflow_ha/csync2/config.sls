# csync2.config: not built yet.
