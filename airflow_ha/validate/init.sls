{#- First state of every run (order 1, failhard): fails, listing every pillar
    problem with its key and fix, before anything changes. Every component's
    init.sls includes this file. -#}
{%- from "airflow_ha/map.jinja" import ah with context %}
airflow_ha-validate-pillar:
  airflow_ha.validated:
    - name: airflow_ha pillar for {{ grains.id }}
    - errors: {{ ah.errors | json }}
    - order: 1
    - failhard: true
