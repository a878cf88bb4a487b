{#- pgBackRest on a db node (WAL archiving and restores through the
    repository host's TLS server) or on the backup node (repo1, its TLS
    server, stanza-create/check once, the first full backup, the timers). -#}
include:
  - airflow_ha.validate
  - .install
  - .config
  - .service
