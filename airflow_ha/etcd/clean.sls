{#- Undo airflow_ha.etcd: DESTROYS this member's data. Runs only with pillar
    airflow_ha:clean: true. -#}
{%- from "airflow_ha/map.jinja" import ah with context %}
{%- if salt["pillar.get"]("airflow_ha:clean", false) is sameas true %}
airflow_ha-etcd-clean-service:
  service.dead:
    - name: {{ ah.etcd.service }}
    - enable: false

airflow_ha-etcd-clean-packages:
  pkg.purged:
    - pkgs:
      - {{ ah.etcd.pkg }}
      - {{ ah.etcd.client_pkg }}
    - require:
      - service: airflow_ha-etcd-clean-service

airflow_ha-etcd-clean-files:
  file.absent:
    - names:
      - {{ ah.etcd.data_dir }}
      - {{ ah.etcd.config_file }}
      - {{ ah.etcd.initial_env }}
      - {{ ah.etcd.join_env }}
      - {{ ah.etcd.join_dropin }}
      - {{ ah.etcd.boot_dropin }}
      - {{ ah.etcd.tls.dir }}
    - require:
      - pkg: airflow_ha-etcd-clean-packages
{%- else %}
airflow_ha-etcd-clean-refused:
  test.fail_without_changes:
    - name: airflow_ha.etcd.clean
    - comment: "Refused: airflow_ha.etcd.clean deletes etcd's data: set pillar airflow_ha:clean: true to run it"
{%- endif %}
