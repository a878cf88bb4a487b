{#- Everything this node's roles ask for. validate comes first; with pillar
    problems it is the only thing included, and it fails the run. -#}
{%- from "airflow_ha/map.jinja" import ah with context %}
include:
  - airflow_ha.validate
{%- if not ah.errors %}
  - airflow_ha.common
{%- if "db" in ah.roles %}
  - airflow_ha.etcd
  - airflow_ha.postgresql
{%- endif %}
{%- if ah.pgbackrest.here %}
  - airflow_ha.pgbackrest
{%- endif %}
  - airflow_ha.haproxy
{%- if ah.vip.enabled and "db" in ah.roles %}
  - airflow_ha.keepalived
{%- endif %}
{%- if ah.pgbouncer.enabled %}
  - airflow_ha.pgbouncer
{%- endif %}
{%- if "broker" in ah.roles %}
  - airflow_ha.rabbitmq
{%- endif %}
  - airflow_ha.csync2
  - airflow_ha.airflow
{%- if ah.monitoring.enabled %}
  - airflow_ha.monitoring
{%- endif %}
{%- endif %}
