{#- Schema and admin user. db_migrated runs on every node but migrates only
    when migrations are pending, under a PostgreSQL advisory lock (racing
    nodes serialise); it retries while the database (Patroni leader behind
    the local HAProxy) is not reachable yet. The admin user is managed on one
    node only (the first api node) so three nodes never race to create it. -#}
{%- from "airflow_ha/map.jinja" import ah with context %}
{%- set af = ah.airflow %}
{%- set paths = {"venv": af.venv, "home": af.home, "user": af.user} %}
{%- set admin_node = ah.one_time_node %}

include:
  - .install
  - .config

airflow_ha-airflow-db-migrated:
  airflow.db_migrated:
    - name: airflow schema
{%- for k, v in paths | dictsort %}
    - {{ k }}: {{ v }}
{%- endfor %}
    - retry:
        attempts: 30
        interval: 10
    - require:
      - pip: airflow_ha-airflow-package
      - file: airflow_ha-airflow-helper
      - file: airflow_ha-airflow-cfg-file
      - sls: airflow_ha.airflow.config
{%- if ah.minion_id == admin_node %}

airflow_ha-airflow-admin-user:
  airflow.user_present:
    - name: {{ af.admin.username }}
    {#- read on the minion: the rendered state holds no password #}
    - password_pillar: airflow_ha:secrets:admin_password
    - email: {{ af.admin.email }}
    - firstname: {{ af.admin.firstname }}
    - lastname: {{ af.admin.lastname }}
    - roles: [{{ af.admin.role }}]
{%- for k, v in paths | dictsort %}
    - {{ k }}: {{ v }}
{%- endfor %}
    {#- FAB syncs its permission tables when any node's Airflow starts; a
        first converge can collide with that (UniqueViolation on
        ab_permission_view_role, seen in the lab): try again. #}
    - retry:
        attempts: 5
        interval: 10
    - require:
      - airflow: airflow_ha-airflow-db-migrated
{%- endif %}
