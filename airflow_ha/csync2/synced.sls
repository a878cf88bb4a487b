{#- For orchestration: this node pushed its DAG changes and csync2 sees no
    difference with any peer (salt 'node*' state.apply airflow_ha.csync2.synced). -#}
airflow_ha-csync2-synced:
  csync2.synced: []
