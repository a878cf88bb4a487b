{#- rabbitmq-server from the distribution; its postinst starts the node with
    the files from config.sls already in place. -#}
{%- from "airflow_ha/map.jinja" import ah with context %}
include:
  - .config

airflow_ha-rabbitmq-package:
  pkg.installed:
    - name: {{ ah.rabbitmq.pkg }}
    - install_recommends: false
    - reload_modules: true
    - require:
      - file: airflow_ha-rabbitmq-cookie
      - file: airflow_ha-rabbitmq-config
      - file: airflow_ha-rabbitmq-advanced
      - file: airflow_ha-rabbitmq-env
      - file: airflow_ha-rabbitmq-plugins
      - module: airflow_ha-rabbitmq-systemd-reload
