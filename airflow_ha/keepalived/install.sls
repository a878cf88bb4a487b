{%- from "airflow_ha/map.jinja" import ah with context %}
{#- Debian's keepalived does not start until its config exists. #}
airflow_ha-keepalived-package:
  pkg.installed:
    - name: {{ ah.keepalived.pkg }}
