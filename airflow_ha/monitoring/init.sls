{#- Prometheus metrics and alerts (README "Monitoring"), with
    airflow_ha:monitoring:enabled: the exporters on every node, the formula's
    own metrics, and Prometheus (with Alertmanager, optional) on the nodes
    with role `monitor`. -#}
{%- from "airflow_ha/map.jinja" import ah with context %}
include:
  - airflow_ha.validate
  - .exporters
  - .boot
  - .metrics
{%- if ah.monitoring.here.airflow %}
  - .airflow
{%- endif %}
{%- if ah.monitoring.here.prometheus %}
  - .prometheus
{%- endif %}
