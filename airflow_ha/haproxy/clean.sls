{#- Undo airflow_ha.haproxy. Runs only with pillar airflow_ha:clean: true. -#}
{%- from "airflow_ha/map.jinja" import ah with context %}
{%- if salt["pillar.get"]("airflow_ha:clean", false) is sameas true %}
airflow_ha-haproxy-clean-service:
  service.dead:
    - name: {{ ah.haproxy.service }}
    - enable: false

airflow_ha-haproxy-clean-package:
  pkg.purged:
    - name: {{ ah.haproxy.pkg }}
    - require:
      - service: airflow_ha-haproxy-clean-service

airflow_ha-haproxy-clean-config:
  file.absent:
    - name: {{ ah.haproxy.config_file }}
    - require:
      - pkg: airflow_ha-haproxy-clean-package
{%- else %}
airflow_ha-haproxy-clean-refused:
  test.fail_without_changes:
    - name: airflow_ha.haproxy.clean
    - comment: "Refused: airflow_ha.haproxy.clean removes HAProxy: set pillar airflow_ha:clean: true to run it"
{%- endif %}
