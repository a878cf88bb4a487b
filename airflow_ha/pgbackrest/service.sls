{#- pgBackRest's TLS server on every pgBackRest node (Debian's
    pgbackrest.service, as postgres), restarted when its config or TLS
    material changes. On the backup node, once: the stanza on every
    repository, `pgbackrest check` (the primary's WAL reaches the
    repository), a first full backup per repository; then the timers of the
    scheduled backups — on this one node only, so a backup never runs twice.
    The db nodes' servers and the Patroni leader may come up later in the
    same run on other nodes: the stanza and check states retry. -#}
{%- from "airflow_ha/map.jinja" import ah with context %}
{%- set b = ah.pgbackrest %}
{%- set units = "/etc/systemd/system" %}
include:
  - .install
  - .config

airflow_ha-pgbackrest-server:
  service.running:
    - name: {{ b.service }}
    - enable: true
    - require:
      - pkg: airflow_ha-pgbackrest-package
    - watch:
      - file: airflow_ha-pgbackrest-config
      - file: airflow_ha-pgbackrest-tls-ca
      - file: airflow_ha-pgbackrest-tls-cert
      - file: airflow_ha-pgbackrest-tls-key
{%- if b.repo_here %}

airflow_ha-pgbackrest-stanza:
  pgbackrest.stanza_present:
    - name: {{ b.stanza }}
    - config: {{ b.repo_config_file }}
    - retry:
        attempts: 30
        interval: 10
    - require:
      - service: airflow_ha-pgbackrest-server
      - file: airflow_ha-pgbackrest-repo-config
      - file: airflow_ha-pgbackrest-repo-dir

airflow_ha-pgbackrest-check:
  pgbackrest.checked:
    - name: {{ b.stanza }}
    - marker: {{ b.check_marker }}
    - config: {{ b.repo_config_file }}
    - timeout: 300
    - retry:
        attempts: 10
        interval: 15
    - require:
      - pgbackrest: airflow_ha-pgbackrest-stanza
{%- for repo in b.repos %}

airflow_ha-pgbackrest-first-full-repo{{ repo }}:
  pgbackrest.full_backup_present:
    - name: {{ b.stanza }}
    - repo: {{ repo }}
    - config: {{ b.repo_config_file }}
    - require:
      - pgbackrest: airflow_ha-pgbackrest-check
{%- endfor %}

airflow_ha-pgbackrest-backup-units:
  file.managed:
    - names:
      - {{ units }}/airflow_ha-pgbackrest-backup@.service:
        - source: salt://airflow_ha/pgbackrest/files/airflow_ha-pgbackrest-backup@.service.jinja
        - context:
            stanza: {{ b.stanza }}
            config: {{ b.repo_config_file }}
            repos: {{ b.repos | json }}
            service: {{ b.service }}
{%- for type in ["full", "diff"] %}
      - {{ units }}/airflow_ha-pgbackrest-backup-{{ type }}.timer:
        - source: salt://airflow_ha/pgbackrest/files/airflow_ha-pgbackrest-backup.timer.jinja
        - context:
            type: {{ type }}
            calendar: {{ b.schedule[type] | json }}
{%- endfor %}
    - template: jinja
    - user: root
    - group: root
    - mode: "0644"

airflow_ha-pgbackrest-daemon-reload:
  cmd.run:
    - name: systemctl daemon-reload
    - onchanges:
      - file: airflow_ha-pgbackrest-backup-units

airflow_ha-pgbackrest-timers:
  service.running:
    - names:
      - airflow_ha-pgbackrest-backup-full.timer
      - airflow_ha-pgbackrest-backup-diff.timer
    - enable: true
    - require:
      - cmd: airflow_ha-pgbackrest-daemon-reload
{%- for repo in b.repos %}
      - pgbackrest: airflow_ha-pgbackrest-first-full-repo{{ repo }}
{%- endfor %}
    - watch:
      - file: airflow_ha-pgbackrest-backup-units
{%- endif %}
