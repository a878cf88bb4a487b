---
# Lab pillar top. lab_generated.sls is written by labctl into the lab state
# dir (second pillar root): the node list and the lab's host-side addresses
# for the current LAB_NODES / LAB_SUBNET (it overrides airflow_ha.sls).
base:
  # The nodes, and the master's own minion (<host>_master), which renders
  # salt-run state.orchestrate airflow_ha.orch from the same pillar.
  'node* or *_master':
    - match: compound
    - airflow_ha
    - lab_generated
