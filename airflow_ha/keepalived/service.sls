{%- from "airflow_ha/map.jinja" import ah with context %}
include:
  - .install
  - .config

airflow_ha-keepalived-service:
  service.running:
    - name: {{ ah.keepalived.service }}
    - enable: true
    - reload: true
    - require:
      - service: airflow_ha-haproxy-service
    - watch:
      - file: airflow_ha-keepalived-config
