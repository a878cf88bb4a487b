{%- from "airflow_ha/map.jinja" import ah with context %}

airflow_ha-common-packages:
  pkg.installed:
    - pkgs: {{ (ah.base_packages + ([ah.time_sync.daemon] if ah.time_sync.managed else [])) | json }}
    - install_recommends: false
    - require:
      - file: airflow_ha-common-apt-proxy
