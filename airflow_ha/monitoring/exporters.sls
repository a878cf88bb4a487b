{#- The exporters, each bound to this node's address. Debian's packages start
    their daemon at install on every address (node exporter :9100, PostgreSQL
    exporter :9187): the arguments file is laid down first (dpkg keeps it,
    Salt installs with --force-confold), so the daemon starts bound right.
    HAProxy's exporter is a frontend in haproxy.cfg, RabbitMQ's plugin is in
    enabled_plugins/rabbitmq.conf and etcd's metrics URL in its environment
    file (those components' templates read monitoring:enabled); Patroni serves
    /metrics on its REST API. -#}
{%- from "airflow_ha/map.jinja" import ah with context %}
{%- set m = ah.monitoring %}
{%- set ne = m.node_exporter %}
{%- set pe = m.postgres_exporter %}
{%- set pg = ah.postgresql %}
{%- if m.here.postgres_exporter or m.here.rabbitmq %}
include:
{%- if m.here.postgres_exporter %}
  - airflow_ha.postgresql
{%- endif %}
{%- if m.here.rabbitmq %}
  - airflow_ha.rabbitmq
{%- endif %}
{%- endif %}

airflow_ha-monitoring-node-exporter-args:
  file.managed:
    - name: /etc/default/{{ ne.pkg }}
    - mode: "0644"
    - contents: |
        # Managed by Salt (airflow_ha.monitoring). Local edits are overwritten.
        ARGS="--web.listen-address={{ ah.address }}:{{ ne.port }} --collector.textfile.directory={{ ne.textfile_dir }}"

{#- Without recommends: prometheus-node-exporter-collectors would add its own
    timers writing textfile metrics (apt, smartmon...). #}
airflow_ha-monitoring-node-exporter-package:
  pkg.installed:
    - name: {{ ne.pkg }}
    - install_recommends: false
    - require:
      - file: airflow_ha-monitoring-node-exporter-args

{#- Debian names the unit after the package. #}
airflow_ha-monitoring-node-exporter-service:
  service.running:
    - name: {{ ne.pkg }}
    - enable: true
    - require:
      - pkg: airflow_ha-monitoring-node-exporter-package
    - watch:
      - file: airflow_ha-monitoring-node-exporter-args
{%- if m.here.postgres_exporter %}

{#- The exporter's role (pg_monitor: the statistics views, no data), created
    on the leader like Airflow's (password read from pillar on the minion). #}
airflow_ha-monitoring-postgres-exporter-role:
  airflow_ha_postgres.user_present:
    - name: {{ pe.user }}
    - password_pillar: airflow_ha:secrets:postgres_exporter_password
    - encrypted: scram-sha-256
    - login: true
    - groups: pg_monitor
    - db_port: {{ pg.port }}
    - onlyif:
      - fun: patroni.is_leader
        config_file: {{ pg.patroni.config_file }}
        default: false
    - require:
      - sls: airflow_ha.postgresql

{#- Debian's postinst makes this file prometheus:prometheus 0640 ("it may
    contain auth credentials"), so the user and group come first (as its
    adduser --system would make them) and the file gets exactly that: a later
    package upgrade changes nothing. The connection string holds the
    password: a template rendered on the minion (never in the SLS data), no
    diff in the changes; the daemon gets it in its environment, not argv. #}
airflow_ha-monitoring-prometheus-group:
  group.present:
    - name: prometheus
    - system: true

airflow_ha-monitoring-prometheus-user:
  user.present:
    - name: prometheus
    - system: true
    - gid: prometheus
    - home: /var/lib/prometheus
    - createhome: false
    - shell: /usr/sbin/nologin
    - require:
      - group: airflow_ha-monitoring-prometheus-group

airflow_ha-monitoring-postgres-exporter-env:
  file.managed:
    - name: /etc/default/{{ pe.pkg }}
    - source: salt://airflow_ha/monitoring/files/postgres-exporter.default.jinja
    - template: jinja
    - user: prometheus
    - group: prometheus
    - mode: "0640"
    - show_changes: false
    - require:
      - user: airflow_ha-monitoring-prometheus-user

airflow_ha-monitoring-postgres-exporter-package:
  pkg.installed:
    - name: {{ pe.pkg }}
    - install_recommends: false
    - require:
      - file: airflow_ha-monitoring-postgres-exporter-env

airflow_ha-monitoring-postgres-exporter-service:
  service.running:
    - name: {{ pe.pkg }}
    - enable: true
    - require:
      - pkg: airflow_ha-monitoring-postgres-exporter-package
      - airflow_ha_postgres: airflow_ha-monitoring-postgres-exporter-role
    - watch:
      - file: airflow_ha-monitoring-postgres-exporter-env
{%- endif %}
{%- if m.here.rabbitmq %}

{#- Listed in enabled_plugins by airflow_ha.rabbitmq (its listener in
    rabbitmq.conf): this only confirms it runs, and enables it on a broker
    that has not restarted since (skipped while its listener is up). #}
airflow_ha-monitoring-rabbitmq-plugin:
  rabbitmq_plugin.enabled:
    - name: rabbitmq_prometheus
    - unless: ss -Hltn 'sport = :{{ m.rabbitmq_port }}' | grep -q .
    - require:
      - sls: airflow_ha.rabbitmq
{%- endif %}
