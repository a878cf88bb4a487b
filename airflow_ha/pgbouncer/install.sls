{%- from "airflow_ha/map.jinja" import ah with context %}
{#- Debian's pgbouncer starts at install on 127.0.0.1:6432 with an empty
    database list; the config below replaces it. #}
airflow_ha-pgbouncer-package:
  pkg.installed:
    - name: {{ ah.pgbouncer.pkg }}
