{%- from "airflow_ha/map.jinja" import ah with context %}
{%- set pw = ah.secrets.get("keepalived_password", "") | string %}
{%- if not pw or pw | length > 8 %}
{{ raise("airflow_ha:secrets:keepalived_password must be 1-8 characters (VRRP PASS authentication uses 8); set it in the pillar") }}
{%- endif %}
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
