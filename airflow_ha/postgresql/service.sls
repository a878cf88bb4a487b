{#- Patroni under systemd (Debian's plain patroni.service). A config change
    is a reload (SIGHUP), never a restart: restarting Patroni restarts
    PostgreSQL and may fail over. -#}
{%- from "airflow_ha/map.jinja" import ah with context %}
{%- set pg = ah.postgresql %}
include:
  - airflow_ha.etcd.service
  - .install
  - .config
{%- if ah.pgbackrest.enabled %}
  - airflow_ha.pgbackrest.config
{%- endif %}

{%- if ah.pgbackrest.enabled %}

{#- While airflow_ha.orch.restore runs (its marker on this node), only the
    orchestration starts Patroni: started here, an emptied data directory
    with no cluster in the DCS would initdb a new, empty cluster. #}
airflow_ha-postgresql-no-restore-under-way:
  test.fail_without_changes:
    - name: >-
        {{ ah.pgbackrest.restore_marker }} exists: airflow_ha.orch.restore has not finished on this
        node (the old data is in {{ ah.pgbackrest.restore_aside }}). Run the restore orchestration
        again, or, to give up the restore, move that data back and remove the marker
    - onlyif: test -e {{ ah.pgbackrest.restore_marker }}
    - require_in:
      - service: airflow_ha-postgresql-patroni-service
{%- endif %}

airflow_ha-postgresql-patroni-service:
  service.running:
    - name: {{ pg.patroni.service }}
    - enable: true
    - reload: true
    - require:
      - airflow_ha_etcd: airflow_ha-etcd-wait-healthy
      - service: airflow_ha-postgresql-patroni-release-after-install
      - cmd: airflow_ha-postgresql-patroni-daemon-reload
      - file: airflow_ha-postgresql-data-dir
      - cmd: airflow_ha-postgresql-drop-debian-main
{%- if ah.pgbackrest.enabled %}
      {#- restore_command and the pgbackrest replica method must work at
          Patroni's first start: a replica whose first start failed on
          "pgbackrest: not found" was crash-recovered by Patroni in single-
          user mode, wrote its own checkpoint and could never stream again. #}
      - file: airflow_ha-pgbackrest-config
      - file: airflow_ha-pgbackrest-archive-get-script
      - file: airflow_ha-pgbackrest-tls-key
{%- endif %}
    - watch:
      - file: airflow_ha-postgresql-patroni-config
{%- if ah.etcd.tls.enabled %}
      - file: airflow_ha-etcd-tls-ca
      - file: airflow_ha-etcd-tls-cert
      - file: airflow_ha-postgresql-etcd-tls-key
{%- endif %}

airflow_ha-postgresql-wait-leader:
  patroni.leader_running:
    - name: {{ ah.cluster_name }}
    - timeout: {{ pg.patroni.wait_timeout }}
    - interval: 3
    - config_file: {{ pg.patroni.config_file }}
    - require:
      - service: airflow_ha-postgresql-patroni-service

{#- Failover timing and PostgreSQL parameters live in the DCS after the
    bootstrap: keep them equal to the pillar (PATCH /config, from the leader;
    dcs_live = dcs, plus the removal of pgBackRest's keys with backups off). #}
airflow_ha-postgresql-dynamic-config:
  patroni.dynamic_config:
    - name: {{ ah.cluster_name }}
    - config: {{ pg.patroni.dcs_live | json }}
    - config_file: {{ pg.patroni.config_file }}
    - onlyif:
      - fun: patroni.is_leader
        config_file: {{ pg.patroni.config_file }}
        default: false
    - require:
      - patroni: airflow_ha-postgresql-wait-leader

{#- Airflow's role and database: on the leader only, through its local socket
    (peer auth as postgres). The password reaches PostgreSQL as a SCRAM
    verifier computed by Salt, never as clear text; the state reads it from
    pillar on the minion (postgres_user.present underneath), so the rendered
    state holds no password. #}
airflow_ha-postgresql-airflow-role:
  airflow_ha_postgres.user_present:
    - name: {{ pg.user }}
    - password_pillar: airflow_ha:secrets:airflow_db_password
    - encrypted: scram-sha-256
    - login: true
    - db_port: {{ pg.port }}
    - onlyif:
      - fun: patroni.is_leader
        config_file: {{ pg.patroni.config_file }}
        default: false
    - require:
      - patroni: airflow_ha-postgresql-wait-leader

airflow_ha-postgresql-airflow-database:
  postgres_database.present:
    - name: {{ pg.database }}
    - owner: {{ pg.user }}
    - encoding: UTF8
    - db_port: {{ pg.port }}
    - onlyif:
      - fun: patroni.is_leader
        config_file: {{ pg.patroni.config_file }}
        default: false
    - require:
      - airflow_ha_postgres: airflow_ha-postgresql-airflow-role

{#- etcd's raft leader is kept off the Patroni primary's node (the script
    says why: a failover of both at once lasts a whole lease ttl longer). #}
{%- set units = "/etc/systemd/system" %}
airflow_ha-postgresql-etcd-leader-script:
  file.managed:
    - name: /usr/local/lib/airflow_ha/etcd-leader-elsewhere
    - source: salt://airflow_ha/postgresql/files/etcd-leader-elsewhere.py
    - makedirs: true
    - mode: "0755"

airflow_ha-postgresql-etcd-leader-units:
  file.managed:
    - names:
      - {{ units }}/airflow_ha-etcd-leader-elsewhere.service:
        - source: salt://airflow_ha/postgresql/files/airflow_ha-etcd-leader-elsewhere.service.jinja
        - template: jinja
        - context:
            units: {{ [ah.etcd.service ~ ".service", pg.patroni.service ~ ".service"] | json }}
            endpoint: {{ ah.etcd.local_url }}
            tls_env: {{ ah.etcd.tls.etcdctl_root_env | json }}
            primary_url: http://{{ ah.address }}:{{ pg.patroni.rest_port }}/primary
      - {{ units }}/airflow_ha-etcd-leader-elsewhere.timer:
        - source: salt://airflow_ha/postgresql/files/airflow_ha-etcd-leader-elsewhere.timer
    - mode: "0644"

airflow_ha-postgresql-etcd-leader-daemon-reload:
  cmd.run:
    - name: systemctl daemon-reload
    - onchanges:
      - file: airflow_ha-postgresql-etcd-leader-units

airflow_ha-postgresql-etcd-leader-timer:
  service.running:
    - name: airflow_ha-etcd-leader-elsewhere.timer
    - enable: true
    - require:
      - cmd: airflow_ha-postgresql-etcd-leader-daemon-reload
      - file: airflow_ha-postgresql-etcd-leader-script
      - patroni: airflow_ha-postgresql-wait-leader
    - watch:
      - file: airflow_ha-postgresql-etcd-leader-units
