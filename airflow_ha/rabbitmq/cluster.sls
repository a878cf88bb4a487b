{#- Cluster membership, plugins, vhost and users. Users, vhosts and
    permissions are cluster-wide: only the first broker node manages them, so
    parallel runs on every node never race. Salt's rabbitmq states read
    through rabbitmqctl (an Erlang VM boot per call): each is skipped when the
    management API already confirms it (airflow_ha_rabbitmq_api). Passwords go through stdin
    (airflow_ha_rabbitmq.user_password); Salt's rabbitmq_user.present then
    sets tags and permissions without a password argument. -#}
{%- from "airflow_ha/map.jinja" import ah with context %}
{%- set rmq = ah.rabbitmq %}
{%- set me = salt["airflow_ha_rabbitmq.node_name"](ah.minion_id) %}
{%- set brokers = salt["airflow_ha_rabbitmq.cluster_nodes"](ah.members.broker) %}
include:
  - .service

airflow_ha-rabbitmq-clustered:
  airflow_ha_rabbitmq.clustered:
    - name: {{ me }}
    - nodes: {{ brokers | json }}
    - require:
      - airflow_ha_rabbitmq: airflow_ha-rabbitmq-restart

{#- rabbitmq-plugins boots an Erlang VM (4-10 s per call under load): a
    listener on the plugin's port already says it runs. #}
airflow_ha-rabbitmq-plugin-management:
  rabbitmq_plugin.enabled:
    - name: rabbitmq_management
    - unless: ss -Hltn 'sport = :{{ rmq.management_port }}' | grep -q .
    - require:
      - airflow_ha_rabbitmq: airflow_ha-rabbitmq-clustered
{%- if ah.minion_id == ah.members.broker[0].id %}

{#- Members that left airflow_ha:nodes (scale-in): forgotten once stopped. #}
airflow_ha-rabbitmq-departed:
  airflow_ha_rabbitmq.departed_forgotten:
    - name: {{ me }}
    - nodes: {{ brokers | json }}
    - require:
      - airflow_ha_rabbitmq: airflow_ha-rabbitmq-clustered

airflow_ha-rabbitmq-guest-absent:
  rabbitmq_user.absent:
    - name: guest
    - unless:
      - fun: airflow_ha_rabbitmq_api.user_absent
        name: guest
    - require:
      - airflow_ha_rabbitmq: airflow_ha-rabbitmq-clustered

airflow_ha-rabbitmq-vhost:
  rabbitmq_vhost.present:
    - name: {{ rmq.vhost }}
    - unless:
      - fun: airflow_ha_rabbitmq_api.vhost_present
        name: {{ rmq.vhost }}
    - require:
      - airflow_ha_rabbitmq: airflow_ha-rabbitmq-clustered
{%- for user, pillar_key, tags, vhosts in [
      (rmq.user, "airflow_ha:secrets:rabbitmq_password", [], [rmq.vhost]),
      (rmq.admin_user, "airflow_ha:secrets:rabbitmq_admin_password", ["administrator"], [rmq.vhost, "/"]),
    ] %}

airflow_ha-rabbitmq-user-{{ user }}-password:
  airflow_ha_rabbitmq.user_password:
    - name: {{ user }}
    - password_pillar: {{ pillar_key }}
    - require:
      - airflow_ha_rabbitmq: airflow_ha-rabbitmq-clustered

{%- set perms = [] %}
{%- for vhost in vhosts %}{% do perms.append({vhost: [".*", ".*", ".*"]}) %}{% endfor %}

airflow_ha-rabbitmq-user-{{ user }}:
  rabbitmq_user.present:
    - name: {{ user }}
{%- if tags %}
    - tags: {{ tags | json }}
{%- endif %}
    - perms: {{ perms | json }}
    - unless:
      - fun: airflow_ha_rabbitmq_api.user_present
        name: {{ user }}
        tags: {{ tags | json if tags else "null" }}
        perms: {{ perms | json }}
    - require:
      - airflow_ha_rabbitmq: airflow_ha-rabbitmq-user-{{ user }}-password
      - rabbitmq_vhost: airflow_ha-rabbitmq-vhost
{%- endfor %}
{%- endif %}
