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

{#- The heal timer (files/rabbitmq-heal.sh says why): restarts this node's
    RabbitMQ when its app stays stopped after a partition while a majority of
    the broker nodes is reachable. #}
{%- set units = "/etc/systemd/system" %}
airflow_ha-rabbitmq-heal-script:
  file.managed:
    - name: /usr/local/lib/airflow_ha/rabbitmq-heal
    - source: salt://airflow_ha/rabbitmq/files/rabbitmq-heal.sh
    - makedirs: true
    - mode: "0755"

airflow_ha-rabbitmq-heal-units:
  file.managed:
    - names:
      - {{ units }}/airflow_ha-rabbitmq-heal.service:
        - source: salt://airflow_ha/rabbitmq/files/airflow_ha-rabbitmq-heal.service.jinja
        - template: jinja
        - context:
            service: {{ rmq.service }}
            amqp_port: {{ rmq.port }}
            dist_port: {{ rmq.dist_port }}
            peers: {{ ah.members.broker | rejectattr("id", "equalto", ah.minion_id) | map(attribute="address") | list | json }}
      - {{ units }}/airflow_ha-rabbitmq-heal.timer:
        - source: salt://airflow_ha/rabbitmq/files/airflow_ha-rabbitmq-heal.timer
    - mode: "0644"

airflow_ha-rabbitmq-heal-daemon-reload:
  cmd.run:
    - name: systemctl daemon-reload
    - onchanges:
      - file: airflow_ha-rabbitmq-heal-units

airflow_ha-rabbitmq-heal-timer:
  service.running:
    - name: airflow_ha-rabbitmq-heal.timer
    - enable: true
    - require:
      - cmd: airflow_ha-rabbitmq-heal-daemon-reload
      - file: airflow_ha-rabbitmq-heal-script
      - airflow_ha_rabbitmq: airflow_ha-rabbitmq-restart
    - watch:
      - file: airflow_ha-rabbitmq-heal-units
