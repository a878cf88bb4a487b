{%- from "airflow_ha/map.jinja" import ah with context %}
{%- set pg = ah.postgresql %}
{%- set b = ah.pgbouncer %}
include:
  - .install

airflow_ha-pgbouncer-config:
  file.managed:
    - name: /etc/pgbouncer/pgbouncer.ini
    - user: postgres
    - group: postgres
    - mode: "0640"
    - contents: |
        ; Managed by Salt (airflow_ha.pgbouncer). Local edits are overwritten.
        [databases]
        {{ pg.database }} = host=127.0.0.1 port={{ ah.haproxy.primary_port }} dbname={{ pg.database }}

        [pgbouncer]
        listen_addr = 127.0.0.1
        listen_port = {{ b.port }}
        unix_socket_dir = /var/run/postgresql
        auth_type = scram-sha-256
        auth_file = /etc/pgbouncer/userlist.txt
        pool_mode = {{ b.pool_mode }}
        default_pool_size = {{ b.default_pool_size }}
        max_client_conn = {{ b.max_client_conn }}
        server_check_query = select 1
        server_check_delay = 10
        ; A failover closes every server connection (HAProxy's
        ; on-marked-down shutdown-sessions) and the new leader answers within
        ; seconds: retry a failed server login after 1 s, not the default 15 s
        ; that would add to every failover.
        server_connect_timeout = 3
        server_login_retry = 1
        idle_transaction_timeout = {{ b.idle_transaction_timeout }}
        ignore_startup_parameters = extra_float_digits,options
        logfile = /var/log/postgresql/pgbouncer.log
        pidfile = /var/run/postgresql/pgbouncer.pid
    - require:
      - pkg: airflow_ha-pgbouncer-package

{#- The clear password: PgBouncer needs it to log in to PostgreSQL with
    SCRAM on the client's behalf. 0640, readable by postgres only. A template
    (rendered on the minion), so the password is not in the rendered SLS. #}
airflow_ha-pgbouncer-userlist:
  file.managed:
    - name: /etc/pgbouncer/userlist.txt
    - source: salt://airflow_ha/pgbouncer/files/userlist.txt.jinja
    - template: jinja
    - user: postgres
    - group: postgres
    - mode: "0640"
    - show_changes: false
    - require:
      - pkg: airflow_ha-pgbouncer-package
