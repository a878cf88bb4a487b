---
# Lab pillar top. lab_generated.sls is written by labctl into the lab state
# dir (second pillar root): the node list and the lab's host-side addresses
# for the current LAB_NODES / LAB_SUBNET (it overrides airflow_ha.sls).
base:
  'node*':
    - airflow_ha
    - lab_generated
