{%- from "airflow_ha/map.jinja" import ah with context %}
{#- A config change is a reload: HAProxy hands its listeners to the new
    process, open sessions are not cut. #}
include:
  - .install
  - .config

airflow_ha-haproxy-service:
  service.running:
    - name: {{ ah.haproxy.service }}
    - enable: true
    - reload: true
    - watch:
      - file: airflow_ha-haproxy-config
