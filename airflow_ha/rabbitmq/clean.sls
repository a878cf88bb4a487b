{#- Remove RabbitMQ and its data from this node. Runs only with pillar
    airflow_ha:clean: true (it deletes every queued message). -#}
{%- from "airflow_ha/map.jinja" import ah with context %}
{%- set rmq = ah.rabbitmq %}
{%- if salt["pillar.get"]("airflow_ha:clean", False) is sameas true %}

airflow_ha-rabbitmq-clean-heal-timer:
  service.dead:
    - name: airflow_ha-rabbitmq-heal.timer
    - enable: false

airflow_ha-rabbitmq-clean-service:
  service.dead:
    - name: {{ rmq.service }}
    - enable: false
    - require:
      - service: airflow_ha-rabbitmq-clean-heal-timer

airflow_ha-rabbitmq-clean-package:
  pkg.purged:
    - name: {{ rmq.pkg }}
    - require:
      - service: airflow_ha-rabbitmq-clean-service

airflow_ha-rabbitmq-clean-files:
  file.absent:
    - names:
      - {{ rmq.conf_dir }}
      - {{ rmq.home }}
      - /var/log/rabbitmq
      - /etc/systemd/system/{{ rmq.epmd_socket }}.d/airflow_ha.conf
      - /etc/systemd/system/airflow_ha-rabbitmq-heal.service
      - /etc/systemd/system/airflow_ha-rabbitmq-heal.timer
      - /usr/local/lib/airflow_ha/rabbitmq-heal
    - require:
      - pkg: airflow_ha-rabbitmq-clean-package
{%- else %}

airflow_ha-rabbitmq-clean-refused:
  test.fail_without_changes:
    - name: "airflow_ha.rabbitmq.clean deletes RabbitMQ and every queued message on this node: run it with the pillar key airflow_ha:clean set to true"
{%- endif %}
