{#- Undo airflow_ha.keepalived. Runs only with pillar airflow_ha:clean: true. -#}
{%- from "airflow_ha/map.jinja" import ah with context %}
{%- if salt["pillar.get"]("airflow_ha:clean", false) is sameas true %}
airflow_ha-keepalived-clean-service:
  service.dead:
    - name: {{ ah.keepalived.service }}
    - enable: false

airflow_ha-keepalived-clean-package:
  pkg.purged:
    - name: {{ ah.keepalived.pkg }}
    - require:
      - service: airflow_ha-keepalived-clean-service

airflow_ha-keepalived-clean-config:
  file.absent:
    - name: {{ ah.keepalived.config_file }}
    - require:
      - pkg: airflow_ha-keepalived-clean-package
{%- else %}
airflow_ha-keepalived-clean-refused:
  test.fail_without_changes:
    - name: airflow_ha.keepalived.clean
    - comment: "Refused: airflow_ha.keepalived.clean removes the VIP: set pillar airflow_ha:clean: true to run it"
{%- endif %}
