{#- csync2 keeps the Airflow dags/plugins folders (and csync2:extra_dirs)
    identical on every node: package, PSK + per-node certificate, config,
    one listener (csync2.socket), an inotify watcher and a periodic sync. -#}
include:
  - airflow_ha.validate
  - .install
  - .config
  - .service
