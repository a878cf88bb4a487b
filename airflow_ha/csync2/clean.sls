# csync2.clean: not built yet.
