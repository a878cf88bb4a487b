{#- Undo airflow_ha.common. Runs only with pillar airflow_ha:clean: true. -#}
{%- if salt["pillar.get"]("airflow_ha:clean", False) is sameas true %}

airflow_ha-common-clean-hosts:
  file.blockreplace:
    - name: /etc/hosts
    - marker_start: "# BEGIN airflow_ha nodes (managed by Salt)"
    - marker_end: "# END airflow_ha nodes"
    - content: ""

airflow_ha-common-clean-files:
  file.absent:
    - names:
      - /etc/apt/apt.conf.d/80airflow_ha-proxy
      - /etc/pip.conf
{%- else %}

airflow_ha-common-clean-refused:
  test.fail_without_changes:
    - name: "airflow_ha.common.clean removes this node's airflow_ha setup: run it with pillar='{ airflow_ha: { clean: true } }'"
{%- endif %}
