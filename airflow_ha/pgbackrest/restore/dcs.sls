{#- airflow_ha.orch.restore, one db node (every Patroni stopped): the
    cluster's keys removed from the DCS (`patronictl remove`, its answers on
    stdin), so the restoring node bootstraps a cluster instead of cloning.
    patronictl refuses while a leader key exists. -#}
{%- from "airflow_ha/map.jinja" import ah with context %}
{%- set p = ah.postgresql.patroni %}
airflow_ha-pgbackrest-restore-dcs-removed:
  cmd.run:
    - name: patronictl -c {{ p.config_file }} remove {{ ah.cluster_name }}
    - stdin: "{{ ah.cluster_name }}\nYes I am aware\n"
