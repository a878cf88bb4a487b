{#- airflow_ha.orch.restore, every node: Airflow's units stopped (not
    disabled: the restore starts them again); on a db node the restore's
    marker (which keeps a plain state.apply from starting Patroni) and Patroni
    stopped when it is a replica (the leader stops last, in stop_db). -#}
{%- from "airflow_ha/map.jinja" import ah with context %}
{%- set b = ah.pgbackrest %}
{%- set comps = salt["airflow.components"](ah.roles, ah.airflow.major) %}
{%- for comp, c in comps | dictsort if c.enabled %}

airflow_ha-pgbackrest-restore-stop-{{ comp }}:
  service.dead:
    - name: {{ c.unit }}
{%- endfor %}
{%- if "db" in ah.roles %}

airflow_ha-pgbackrest-restore-marker:
  file.managed:
    - name: {{ b.restore_marker }}
    - makedirs: true
    - mode: "0644"
    - contents: {{ ({"target": ah.restore.get("target"), "node": ah.restore.get("node")} | json) | yaml_squote }}

airflow_ha-pgbackrest-restore-stop-replica:
  service.dead:
    - name: {{ ah.postgresql.patroni.service }}
    - unless:
      - fun: patroni.is_leader
        config_file: {{ ah.postgresql.patroni.config_file }}
        default: false
    - require:
      - file: airflow_ha-pgbackrest-restore-marker
{%- endif %}
