{#- salt-run state.orchestrate airflow_ha.orch.airflow
    The Airflow layer alone, in order (the DB, broker and csync2 layers must
    be up): install + config everywhere -> schema migrated and admin user on
    ONE node -> everything (services) everywhere -> a health gate that waits
    until every node's enabled components answer. -#}
{%- set ah = pillar.get("airflow_ha", {}) %}
{%- set nodes = (ah.get("nodes") or {}) | list %}
{%- if not nodes %}

airflow_ha-orch-airflow-target:
  test.fail_without_changes:
    - name: >-
        airflow_ha.orch.airflow found no nodes: the pillar the master sees has
        no airflow_ha:nodes (assign the airflow_ha pillar to the master's
        minion id too, or pass it with pillar=)
    - failhard: true
{%- else %}
{%- set first = nodes | first %}

airflow_ha-orch-airflow-install:
  salt.state:
    - tgt: {{ nodes | json }}
    - tgt_type: list
    - sls: [airflow_ha.airflow.install, airflow_ha.airflow.config]
    - failhard: true

airflow_ha-orch-airflow-db:
  salt.state:
    - tgt: {{ first }}
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
