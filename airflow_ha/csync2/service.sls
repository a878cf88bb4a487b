# csync2.service: not built yet.
