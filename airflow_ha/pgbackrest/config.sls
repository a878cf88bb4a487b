{#- pgBackRest's files. Every pgBackRest node: the TLS material (CA and node
    certificate 0644, the key 0600 postgres, from pillar by path: no key in
    the rendered SLS) and pgbackrest.conf (the TLS server; on a db node also
    the database side: repo1 through the backup node's server, repo2 on S3).
    The backup node: repo.conf (repo1's path, encryption, retention, every
    db node as pgN-host) and the repository folder. Both configs are 0640
    root:postgres and may hold secrets (passphrase, S3 keys): rendered on
    the minion, never shown in changes. -#}
{%- from "airflow_ha/map.jinja" import ah with context %}
{%- set b = ah.pgbackrest %}
{%- set tls = b.tls %}
include:
  - .install

airflow_ha-pgbackrest-tls-dir:
  file.directory:
    - name: {{ tls.dir }}
    - user: root
    - group: root
    - mode: "0755"
    - makedirs: true
    - require:
      - pkg: airflow_ha-pgbackrest-package

airflow_ha-pgbackrest-tls-ca:
  file.managed:
    - name: {{ tls.ca_file }}
    - contents_pillar: {{ tls.pillar }}:ca_cert
    - user: root
    - group: root
    - mode: "0644"
    - require:
      - file: airflow_ha-pgbackrest-tls-dir

airflow_ha-pgbackrest-tls-cert:
  file.managed:
    - name: {{ tls.cert_file }}
    - contents_pillar: {{ tls.pillar }}:certs:{{ ah.minion_id }}:cert
    - user: root
    - group: root
    - mode: "0644"
    - require:
      - file: airflow_ha-pgbackrest-tls-dir

airflow_ha-pgbackrest-tls-key:
  file.managed:
    - name: {{ tls.key_file }}
    - contents_pillar: {{ tls.pillar }}:certs:{{ ah.minion_id }}:key
    - user: postgres
    - group: postgres
    - mode: "0600"
    - show_changes: false
    - require:
      - file: airflow_ha-pgbackrest-tls-dir

airflow_ha-pgbackrest-config:
  file.managed:
    - name: {{ b.config_file }}
    - source: salt://airflow_ha/pgbackrest/files/pgbackrest.conf.jinja
    - template: jinja
    - makedirs: true
    - user: root
    - group: postgres
    - mode: "0640"
    - show_changes: false
    - require:
      - pkg: airflow_ha-pgbackrest-package
{%- if b.db_here %}

{#- restore_command (Patroni's recovery_conf): a dead repository host must
    not stall a standby or a promotion (the script's comment). #}
airflow_ha-pgbackrest-archive-get-script:
  file.managed:
    - name: {{ b.archive_get_script }}
    - source: salt://airflow_ha/pgbackrest/files/archive-get.sh.jinja
    - template: jinja
    - makedirs: true
    - user: root
    - group: root
    - mode: "0755"

airflow_ha-pgbackrest-spool:
  file.directory:
    - name: {{ b.spool_path }}
    - user: postgres
    - group: postgres
    - mode: "0750"
    - require:
      - pkg: airflow_ha-pgbackrest-package
{%- endif %}
{%- if b.repo_here %}

airflow_ha-pgbackrest-repo-dir:
  file.directory:
    - name: {{ b.repo_path }}
    - user: postgres
    - group: postgres
    - mode: "0750"
    - makedirs: true
    - require:
      - pkg: airflow_ha-pgbackrest-package

airflow_ha-pgbackrest-repo-config:
  file.managed:
    - name: {{ b.repo_config_file }}
    - source: salt://airflow_ha/pgbackrest/files/repo.conf.jinja
    - template: jinja
    - makedirs: true
    - user: root
    - group: postgres
    - mode: "0640"
    - show_changes: false
    - require:
      - pkg: airflow_ha-pgbackrest-package
{%- endif %}
