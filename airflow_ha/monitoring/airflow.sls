{#- Airflow's metrics: Airflow pushes OpenTelemetry (airflow.cfg [metrics]
    otel_on, derived in _utils/ah_monitoring.py) to the formula's bridge on
    127.0.0.1, which serves them in Prometheus' format on the node address
    (files/airflow-otlp-bridge.py says why a bridge of its own). It runs with
    the Airflow venv's python (OpenTelemetry's protobuf messages). -#}
{%- from "airflow_ha/map.jinja" import ah with context %}
{%- set m = ah.monitoring %}
{%- set af = ah.airflow %}
{%- set lib = "/usr/local/lib/airflow_ha" %}
include:
  - airflow_ha.airflow

airflow_ha-monitoring-airflow-bridge-script:
  file.managed:
    - name: {{ lib }}/airflow-otlp-bridge
    - source: salt://airflow_ha/monitoring/files/airflow-otlp-bridge.py
    - makedirs: true
    - mode: "0755"

airflow_ha-monitoring-airflow-bridge-unit:
  file.managed:
    - name: /etc/systemd/system/airflow_ha-airflow-metrics.service
    - mode: "0644"
    - contents: |
        # Managed by Salt (airflow_ha.monitoring). Local edits are overwritten.
        [Unit]
        Description=airflow_ha: Airflow's OpenTelemetry metrics in Prometheus' format
        After=network-online.target
        [Service]
        Type=simple
        User={{ af.user }}
        ExecStart={{ af.venv }}/bin/python {{ lib }}/airflow-otlp-bridge --otlp 127.0.0.1:{{ m.otlp_port }} --listen {{ ah.address }}:{{ m.airflow_port }}
        Restart=always
        RestartSec=5
        [Install]
        WantedBy=multi-user.target

airflow_ha-monitoring-airflow-bridge-daemon-reload:
  cmd.run:
    - name: systemctl daemon-reload
    - onchanges:
      - file: airflow_ha-monitoring-airflow-bridge-unit

airflow_ha-monitoring-airflow-bridge-service:
  service.running:
    - name: airflow_ha-airflow-metrics
    - enable: true
    - require:
      - cmd: airflow_ha-monitoring-airflow-bridge-daemon-reload
      - sls: airflow_ha.airflow
    - watch:
      - file: airflow_ha-monitoring-airflow-bridge-script
      - file: airflow_ha-monitoring-airflow-bridge-unit
