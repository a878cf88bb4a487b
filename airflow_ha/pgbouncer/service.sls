{%- from "airflow_ha/map.jinja" import ah with context %}
include:
  - .install
  - .config

airflow_ha-pgbouncer-service:
  service.running:
    - name: {{ ah.pgbouncer.service }}
    - enable: true
    - reload: true
    - require:
      - service: airflow_ha-haproxy-service
    - watch:
      - file: airflow_ha-pgbouncer-config
      - file: airflow_ha-pgbouncer-userlist
