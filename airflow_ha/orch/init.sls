{#- salt-run state.orchestrate airflow_ha.orch
    Brings the cluster up layer by layer, in order: each stage runs on the
    nodes whose roles ask for it and the next stage starts only when the
    previous one succeeded everywhere; a health gate closes it. The nodes,
    their roles (defaulted) and the options come from airflow_ha.settings'
    cluster view of the airflow_ha pillar the master sees (the formula's
    _modules and _utils on the master: salt-run saltutil.sync_all).
    The Airflow layer alone: salt-run state.orchestrate airflow_ha.orch.airflow -#}
{%- if "airflow_ha.settings" not in salt %}

airflow_ha-orch-modules:
  test.fail_without_changes:
    - name: >-
        airflow_ha.orch needs the formula's modules on the master: run
        salt-run saltutil.sync_all, then orchestrate again
    - failhard: true
{%- else %}
{%- import_yaml "airflow_ha/parameters/defaults.yaml" as defaults %}
{%- import_yaml "airflow_ha/parameters/os.yaml" as os_layers %}
{%- set raw = pillar.get("airflow_ha", {}) %}
{%- set ah = salt["airflow_ha.settings"](defaults, os_layers, raw, cluster=True) %}
{%- set nodes = ah.nodes %}
{#- stage, role that selects its nodes (none: every node; pgbackrest: the
    db and backup nodes), whether it is on #}
{%- set stages = [
      ("common", none, true),
      ("etcd", "db", true),
      ("postgresql", "db", true),
      ("pgbackrest", "pgbackrest", ah.pgbackrest.enabled),
      ("haproxy", none, true),
      ("keepalived", "db", ah.vip.enabled),
      ("pgbouncer", none, ah.pgbouncer.enabled),
      ("rabbitmq", "broker", true),
      ("csync2", none, true),
    ] %}

{%- if raw is not mapping or not raw.get("nodes") %}

airflow_ha-orch-target:
  test.fail_without_changes:
    - name: >-
        airflow_ha.orch found no nodes: the pillar the master sees has no
        airflow_ha:nodes (assign the airflow_ha pillar to the master's minion
        id too, or pass it with pillar=)
    - failhard: true
{%- elif ah.errors %}

airflow_ha-orch-pillar:
  test.fail_without_changes:
    - name: {{ salt["airflow_ha.format_errors"](ah.errors) | json }}
    - failhard: true
{%- else %}

airflow_ha-orch-validate:
  salt.state:
    - tgt: {{ nodes | list | json }}
    - tgt_type: list
    - sls: [airflow_ha.validate]
    - queue: true
    - failhard: true
{%-   set previous = "airflow_ha-orch-validate" %}
{%-   for stage, role, enabled in stages if enabled %}
{%-     if role is none %}
{%-       set targets = nodes | list %}
{%-     elif role == "pgbackrest" %}
{%-       set targets = ah.pgbackrest.nodes %}
{%-     else %}
{%-       set targets = ah.members[role] | map(attribute="id") | list %}
{%-     endif %}

airflow_ha-orch-{{ stage }}:
  salt.state:
    - tgt: {{ targets | json }}
    - tgt_type: list
    - sls: [airflow_ha.{{ stage }}]
    - queue: true
    - failhard: true
    - require:
      - salt: {{ previous }}
{%-     set previous = "airflow_ha-orch-" ~ stage %}
{%-   endfor %}
{%-   set all_nodes = nodes | list %}

{#- Airflow: install + config everywhere, the schema and admin user from one
    node, then the units everywhere, then a health gate. #}
airflow_ha-orch-airflow-install:
  salt.state:
    - tgt: {{ all_nodes | json }}
    - tgt_type: list
    - sls: [airflow_ha.airflow.install, airflow_ha.airflow.config]
    - queue: true
    - failhard: true
    - require:
      - salt: {{ previous }}

airflow_ha-orch-airflow-db:
  salt.state:
    - tgt: {{ ah.one_time_node }}
    - sls: [airflow_ha.airflow.db]
    - queue: true
    - failhard: true
    - require:
      - salt: airflow_ha-orch-airflow-install

airflow_ha-orch-airflow:
  salt.state:
    - tgt: {{ all_nodes | json }}
    - tgt_type: list
    - sls: [airflow_ha.airflow]
    - queue: true
    - failhard: true
    - require:
      - salt: airflow_ha-orch-airflow-db

airflow_ha-orch-health:
  salt.function:
    - name: airflow.wait_healthy
    - tgt: {{ all_nodes | json }}
    - tgt_type: list
    - kwarg:
        timeout: 300
    - timeout: 360
    - require:
      - salt: airflow_ha-orch-airflow
{%- endif %}
{%- endif %}
