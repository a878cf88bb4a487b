{#- salt-run state.orchestrate airflow_ha.orch.airflow
    The Airflow layer alone, in order (the DB, broker and csync2 layers must
    be up): install + config everywhere -> schema migrated and admin user on
    the one node settings() chooses for one-time jobs (the first api node) ->
    everything (services) everywhere -> a health gate that waits until every
    node's enabled components answer. Nodes and that node come from
    airflow_ha.settings' cluster view, as in airflow_ha.orch. -#}
{%- if "airflow_ha.settings" not in salt %}

airflow_ha-orch-modules:
  test.fail_without_changes:
    - name: >-
        airflow_ha.orch.airflow needs the formula's modules on the master: run
        salt-run saltutil.sync_all, then orchestrate again
    - failhard: true
{%- else %}
{%- import_yaml "airflow_ha/parameters/defaults.yaml" as defaults %}
{%- import_yaml "airflow_ha/parameters/os.yaml" as os_layers %}
{%- set raw = pillar.get("airflow_ha", {}) %}
{%- set ah = salt["airflow_ha.settings"](defaults, os_layers, raw, cluster=True) %}
{%- if raw is not mapping or not raw.get("nodes") %}

airflow_ha-orch-airflow-target:
  test.fail_without_changes:
    - name: >-
        airflow_ha.orch.airflow found no nodes: the pillar the master sees has
        no airflow_ha:nodes (assign the airflow_ha pillar to the master's
        minion id too, or pass it with pillar=)
    - failhard: true
{%- elif ah.errors %}

airflow_ha-orch-pillar:
  test.fail_without_changes:
    - name: {{ salt["airflow_ha.format_errors"](ah.errors) | json }}
    - failhard: true
{%- else %}
{%- set nodes = ah.nodes | list %}

airflow_ha-orch-airflow-install:
  salt.state:
    - tgt: {{ nodes | json }}
    - tgt_type: list
    - sls: [airflow_ha.airflow.install, airflow_ha.airflow.config]
    - failhard: true

airflow_ha-orch-airflow-db:
  salt.state:
    - tgt: {{ ah.one_time_node }}
    - sls: [airflow_ha.airflow.db]
    - failhard: true
    - require:
      - salt: airflow_ha-orch-airflow-install

airflow_ha-orch-airflow-services:
  salt.state:
    - tgt: {{ nodes | json }}
    - tgt_type: list
    - sls: [airflow_ha.airflow]
    - failhard: true
    - require:
      - salt: airflow_ha-orch-airflow-db

airflow_ha-orch-airflow-health:
  salt.function:
    - name: airflow.wait_healthy
    - tgt: {{ nodes | json }}
    - tgt_type: list
    - kwarg:
        timeout: 300
    - timeout: 360
    - require:
      - salt: airflow_ha-orch-airflow-services
{%- endif %}
{%- endif %}
