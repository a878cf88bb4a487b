{#- epmd.socket and rabbitmq-server. No `watch`: Debian's postinst already
    started RabbitMQ with our files, so a watch would restart every fresh node
    right after the cluster formed. restarted_if_stale restarts a unit only
    when a file (or epmd.socket) changed after the unit started. A restart of
    a clustered node is safe: it rejoins its cluster. -#}
{%- from "airflow_ha/map.jinja" import ah with context %}
{%- set rmq = ah.rabbitmq %}
include:
  - .config
  - .install

airflow_ha-rabbitmq-epmd:
  service.running:
    - name: {{ rmq.epmd_socket }}
    - enable: true
    - require:
      - pkg: airflow_ha-rabbitmq-package

airflow_ha-rabbitmq-epmd-restart:
  airflow_ha_rabbitmq.restarted_if_stale:
    - name: {{ rmq.epmd_socket }}
    - paths:
      - /etc/systemd/system/{{ rmq.epmd_socket }}.d/airflow_ha.conf
    - require:
      - service: airflow_ha-rabbitmq-epmd
      - file: airflow_ha-rabbitmq-epmd-socket-bind

airflow_ha-rabbitmq-service:
  service.running:
    - name: {{ rmq.service }}
    - enable: true
    - require:
      - pkg: airflow_ha-rabbitmq-package
      - airflow_ha_rabbitmq: airflow_ha-rabbitmq-epmd-restart

airflow_ha-rabbitmq-restart:
  airflow_ha_rabbitmq.restarted_if_stale:
    - name: {{ rmq.service }}
    - paths:
      - {{ rmq.home }}/.erlang.cookie
      - {{ rmq.conf_dir }}/rabbitmq.conf
      - {{ rmq.conf_dir }}/rabbitmq-env.conf
      - {{ rmq.conf_dir }}/enabled_plugins
    - units:
      - {{ rmq.epmd_socket }}
    - require:
      - service: airflow_ha-rabbitmq-service
      - file: airflow_ha-rabbitmq-cookie
      - file: airflow_ha-rabbitmq-config
      - file: airflow_ha-rabbitmq-env
      - file: airflow_ha-rabbitmq-plugins
