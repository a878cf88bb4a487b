{#- salt-run state.orchestrate airflow_ha.orch
    Brings the cluster up layer by layer: each stage runs on every node (a
    component's init.sls does nothing on a node whose roles don't ask for it)
    and the next stage starts only when the previous one succeeded everywhere.
    Targets: the minions listed in the airflow_ha:nodes pillar the master sees,
    or pillar='{"airflow_ha_orch": {"target": "node*"}}' (a glob). -#}
{%- set orch = pillar.get("airflow_ha_orch", {}) %}
{%- set listed = pillar.get("airflow_ha", {}).get("nodes", {}) %}
{%- if orch.get("target") %}
{%-   set tgt, tgt_type = orch.target, "glob" %}
{%- else %}
{%-   set tgt, tgt_type = listed | list | join(","), "list" %}
{%- endif %}
{%- set stages = ["common", "etcd", "postgresql", "haproxy", "keepalived", "pgbouncer", "rabbitmq", "csync2", "airflow"] %}

{%- if not tgt %}
airflow_ha-orch-target:
  test.fail_without_changes:
    - name: >-
        airflow_ha.orch found no target: the master's pillar has no
        airflow_ha:nodes; pass pillar='{"airflow_ha_orch": {"target": "GLOB"}}'
    - failhard: true
{%- else %}

airflow_ha-orch-validate:
  salt.state:
    - tgt: {{ tgt | json }}
    - tgt_type: {{ tgt_type }}
    - sls: [airflow_ha.validate]
    - failhard: true
{%-   set previous = "airflow_ha-orch-validate" %}
{%-   for stage in stages %}

airflow_ha-orch-{{ stage }}:
  salt.state:
    - tgt: {{ tgt | json }}
    - tgt_type: {{ tgt_type }}
    - sls: [airflow_ha.{{ stage }}]
    - failhard: true
    - require:
      - salt: {{ previous }}
{%-     set previous = "airflow_ha-orch-" ~ stage %}
{%-   endfor %}
{%- endif %}
