{#- The formula's own metrics (files/airflow_ha-metrics.py says what and
    why): a small loop writing a file for the node exporter's textfile
    collector. It imports the csync2 parser airflow_ha.csync2 installs in
    /usr/local/lib/airflow_ha and ah_health.py, installed here. -#}
{%- from "airflow_ha/map.jinja" import ah with context %}
{%- set m = ah.monitoring %}
{%- set af = ah.airflow %}
{%- set lib = "/usr/local/lib/airflow_ha" %}
{%- set args = ["--textfile", m.node_exporter.textfile_dir ~ "/airflow_ha.prom", "--interval", m.formula_interval] %}
{%- if "scheduler" in ah.roles %}
{%-   do args.extend(["--scheduler", "http://" ~ ah.address ~ ":" ~ af.scheduler_health_port ~ "/health"]) %}
{%- endif %}
{%- if "api" in ah.roles %}
{%-   do args.extend(["--api", af.api_health_url]) %}
{%- endif %}
{%- if m.here.rabbitmq %}
{%-   do args.append("--rabbitmq") %}
{%- endif %}
{%- if ah.pgbackrest.repo_here %}
{%-   do args.extend(["--pgbackrest", ah.pgbackrest.stanza]) %}
{%- endif %}
include:
  - airflow_ha.csync2
  - .exporters

airflow_ha-monitoring-metrics-files:
  file.managed:
    - names:
      - {{ lib }}/airflow_ha-metrics:
        - source: salt://airflow_ha/monitoring/files/airflow_ha-metrics.py
        - mode: "0755"
      - {{ lib }}/ah_health.py:
        - source: salt://_utils/ah_health.py
        - mode: "0644"
    - makedirs: true

airflow_ha-monitoring-metrics-unit:
  file.managed:
    - name: /etc/systemd/system/airflow_ha-metrics.service
    - mode: "0644"
    - contents: |
        # Managed by Salt (airflow_ha.monitoring). Local edits are overwritten.
        [Unit]
        Description=airflow_ha metrics for the node exporter's textfile collector
        After=network-online.target
        [Service]
        Type=simple
        Environment=AIRFLOW_HA_RABBITMQ_VHOST={{ ah.rabbitmq.vhost }}
        ExecStart=/usr/bin/python3 {{ lib }}/airflow_ha-metrics {{ args | join(" ") }}
        Restart=always
        RestartSec=10
        Nice=10
        [Install]
        WantedBy=multi-user.target

airflow_ha-monitoring-metrics-daemon-reload:
  cmd.run:
    - name: systemctl daemon-reload
    - onchanges:
      - file: airflow_ha-monitoring-metrics-unit

airflow_ha-monitoring-metrics-service:
  service.running:
    - name: airflow_ha-metrics
    - enable: true
    - require:
      - cmd: airflow_ha-monitoring-metrics-daemon-reload
      - pkg: airflow_ha-monitoring-node-exporter-package
      - sls: airflow_ha.csync2
    - watch:
      - file: airflow_ha-monitoring-metrics-files
      - file: airflow_ha-monitoring-metrics-unit
