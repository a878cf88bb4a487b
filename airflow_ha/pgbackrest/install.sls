{#- Debian's pgbackrest: the binary, pgbackrest.service (the TLS server, not
    enabled by the package) and /var/{lib,log,spool}/pgbackrest for postgres. -#}
{%- from "airflow_ha/map.jinja" import ah with context %}
airflow_ha-pgbackrest-package:
  pkg.installed:
    - name: {{ ah.pgbackrest.pkg }}
