{%- from "airflow_ha/map.jinja" import ah with context %}
{#- secrets:keepalived_password (1-8 characters: VRRP PASS auth) is checked
    by the validator, which stops the run before any state. #}
include:
  - .install

airflow_ha-keepalived-config:
  file.managed:
    - name: {{ ah.keepalived.config_file }}
    - source: salt://airflow_ha/keepalived/files/keepalived.conf.jinja
    - template: jinja
    - user: root
    - group: root
    - mode: "0600"
    - show_changes: false
    - check_cmd: /usr/sbin/keepalived --config-test -f
    - require:
      - pkg: airflow_ha-keepalived-package
