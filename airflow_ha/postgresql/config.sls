{#- /etc/patroni/config.yml (0600 postgres: it holds the database passwords).
    bootstrap.dcs applies once, when Patroni initialises the cluster; later
    changes of ttl/loop_wait/parameters go through `patronictl edit-config`.
    With etcd:tls:enabled, Patroni's own 0600 copy of the node's key. The
    boot drop-in (common/files/boot-dropin.conf) starts Patroni after the
    network is online and again after a failed exit. -#}
{%- from "airflow_ha/map.jinja" import ah with context %}
include:
  - .install
{%- if ah.etcd.tls.enabled %}
  - airflow_ha.etcd.tls
{%- endif %}

airflow_ha-postgresql-data-dir:
  file.directory:
    - name: {{ ah.postgresql.data_dir }}
    - user: postgres
    - group: postgres
    - mode: "0700"
    - require:
      - pkg: airflow_ha-postgresql-packages

airflow_ha-postgresql-patroni-config:
  file.managed:
    - name: {{ ah.postgresql.patroni.config_file }}
    - source: salt://airflow_ha/postgresql/files/patroni.yml.jinja
    - template: jinja
    - makedirs: true
    - user: postgres
    - group: postgres
    - mode: "0600"
    - show_changes: false
    - require:
      - pkg: airflow_ha-postgresql-patroni-packages

airflow_ha-postgresql-patroni-boot-dropin:
  file.managed:
    - name: {{ ah.postgresql.patroni.boot_dropin }}
    - source: salt://airflow_ha/common/files/boot-dropin.conf
    - makedirs: true
    - mode: "0644"

airflow_ha-postgresql-patroni-daemon-reload:
  cmd.run:
    - name: systemctl daemon-reload
    - onchanges:
      - file: airflow_ha-postgresql-patroni-boot-dropin
{%- if ah.etcd.tls.enabled %}

airflow_ha-postgresql-etcd-tls-key:
  file.managed:
    - name: {{ ah.etcd.tls.key_files.patroni }}
    - contents_pillar: airflow_ha:etcd:tls:certs:{{ ah.minion_id }}:key
    - user: postgres
    - group: postgres
    - mode: "0600"
    - show_changes: false
    - require:
      - pkg: airflow_ha-postgresql-packages
      - file: airflow_ha-etcd-tls-dir
{%- endif %}
