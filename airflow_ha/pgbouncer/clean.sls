{#- Undo airflow_ha.pgbouncer. Runs only with pillar airflow_ha:clean: true. -#}
{%- from "airflow_ha/map.jinja" import ah with context %}
{%- if salt["pillar.get"]("airflow_ha:clean", false) is sameas true %}
airflow_ha-pgbouncer-clean-service:
  service.dead:
    - name: {{ ah.pgbouncer.service }}
    - enable: false

airflow_ha-pgbouncer-clean-package:
  pkg.purged:
    - name: {{ ah.pgbouncer.pkg }}
    - require:
      - service: airflow_ha-pgbouncer-clean-service

airflow_ha-pgbouncer-clean-files:
  file.absent:
    - names:
      - /etc/pgbouncer/pgbouncer.ini
      - /etc/pgbouncer/userlist.txt
    - require:
      - pkg: airflow_ha-pgbouncer-clean-package
{%- else %}
airflow_ha-pgbouncer-clean-refused:
  test.fail_without_changes:
    - name: airflow_ha.pgbouncer.clean
    - comment: "Refused: airflow_ha.pgbouncer.clean removes PgBouncer: set pillar airflow_ha:clean: true to run it"
{%- endif %}
