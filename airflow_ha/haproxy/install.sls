{%- from "airflow_ha/map.jinja" import ah with context %}
{#- Debian's haproxy starts at install with no listeners: harmless. #}
airflow_ha-haproxy-package:
  pkg.installed:
    - name: {{ ah.haproxy.pkg }}
