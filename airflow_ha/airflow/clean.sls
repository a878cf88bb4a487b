{#- Removes Airflow from this node: units, venv, home (DAGs, logs, config).
    Destructive, so it does nothing unless the pillar says
    airflow_ha:clean: true. The metadata database is not touched. -#}
{%- from "airflow_ha/map.jinja" import ah with context %}
{%- set af = ah.airflow %}
{%- if salt["pillar.get"]("airflow_ha:clean", false) is sameas true %}
{%- for comp in ["api-server", "webserver", "scheduler", "dag-processor", "triggerer", "worker", "flower"] %}

airflow_ha-airflow-clean-service-{{ comp }}:
  service.dead:
    - name: airflow-{{ comp }}
    - enable: false

airflow_ha-airflow-clean-unit-{{ comp }}:
  file.absent:
    - name: /etc/systemd/system/airflow-{{ comp }}.service
    - require:
      - service: airflow_ha-airflow-clean-service-{{ comp }}
{%- endfor %}

airflow_ha-airflow-clean-daemon-reload:
  module.run:
    - service.systemctl_reload: []
    - onchanges:
{%- for comp in ["api-server", "webserver", "scheduler", "dag-processor", "triggerer", "worker", "flower"] %}
      - file: airflow_ha-airflow-clean-unit-{{ comp }}
{%- endfor %}

airflow_ha-airflow-clean-files:
  file.absent:
    - names:
      - {{ af.venv }}
      - {{ salt["file.dirname"](af.venv) }}/{{ af.constraints_file }}
      - {{ af.home }}
      - /usr/local/lib/airflow_ha/airflow-locked-run
      - {{ ah.etcd.tls.key_files.airflow }}
    - require:
      - module: airflow_ha-airflow-clean-daemon-reload

airflow_ha-airflow-clean-user:
  user.absent:
    - name: {{ af.user }}
    - require:
      - file: airflow_ha-airflow-clean-files
{%- else %}

airflow_ha-airflow-clean-refused:
  test.show_notification:
    - text: >-
        airflow_ha.airflow.clean removes the Airflow venv, home, units and user.
        Nothing was done: set pillar airflow_ha:clean: true to allow it.
{%- endif %}
