{#- epmd.socket and rabbitmq-server, restarted when their files change.
    A restart of a clustered node is safe: it rejoins its cluster. -#}
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
    - watch:
      - file: airflow_ha-rabbitmq-epmd-socket-bind

airflow_ha-rabbitmq-service:
  service.running:
    - name: {{ rmq.service }}
    - enable: true
    - require:
      - pkg: airflow_ha-rabbitmq-package
    - watch:
      - file: airflow_ha-rabbitmq-cookie
      - file: airflow_ha-rabbitmq-config
      - file: airflow_ha-rabbitmq-env
      - file: airflow_ha-rabbitmq-plugins
      - service: airflow_ha-rabbitmq-epmd
