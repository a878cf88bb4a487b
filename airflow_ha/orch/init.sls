{#- salt-run state.orchestrate airflow_ha.orch
    Brings the cluster up layer by layer, in order: each stage runs on the
    nodes whose roles ask for it (from the airflow_ha pillar the master sees;
    roles default as in parameters/defaults.yaml) and the next stage starts
    only when the previous one succeeded everywhere; a health gate closes it.
    The Airflow layer alone: salt-run state.orchestrate airflow_ha.orch.airflow -#}
{%- import_yaml "airflow_ha/parameters/defaults.yaml" as defaults %}
{%- set ah = pillar.get("airflow_ha", {}) %}
{%- set nodes = ah.get("nodes", {}) if ah.get("nodes") is mapping else {} %}
{%- set vip = ah.get("vip", {}).get("enabled", defaults.vip.enabled) %}
{%- set pgbouncer = ah.get("pgbouncer", {}).get("enabled", defaults.pgbouncer.enabled) %}
{#- stage, role that selects its nodes (none: every node), whether it is on #}
{%- set stages = [
      ("common", none, true),
      ("etcd", "db", true),
      ("postgresql", "db", true),
      ("haproxy", none, true),
      ("keepalived", "db", vip),
      ("pgbouncer", none, pgbouncer),
      ("rabbitmq", "broker", true),
      ("csync2", none, true),
    ] %}

{%- if not nodes %}
airflow_ha-orch-target:
  test.fail_without_changes:
    - name: >-
        airflow_ha.orch found no nodes: the pillar the master sees has no
        airflow_ha:nodes (assign the airflow_ha pillar to the master's minion
        id too, or pass it with pillar=)
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
{%-     set targets = [] %}
{%-     for node_id, node in nodes.items() %}
{%-       if role is none or role in (node or {}).get("roles", defaults.all_roles) %}
{%-         do targets.append(node_id) %}
{%-       endif %}
{%-     endfor %}

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
    - tgt: {{ all_nodes | first }}
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
