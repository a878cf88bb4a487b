{#- Prometheus on a `monitor` node: every node's targets (monitoring:jobs,
    derived in _utils/ah_monitoring.py) and the formula's alert rules
    (files/rules/airflow_ha.yml.jinja, unit-tested with promtool in make
    test-fast). The arguments file comes before the package (Debian's starts
    Prometheus at install, on 0.0.0.0:9090 otherwise); the configuration and
    the rules after it, each checked by promtool before it replaces the old. -#}
{%- from "airflow_ha/map.jinja" import ah with context %}
{%- set m = ah.monitoring %}
{%- set pr = m.prometheus %}
include:
  - .exporters

airflow_ha-monitoring-prometheus-args:
  file.managed:
    - name: /etc/default/{{ pr.pkg }}
    - mode: "0644"
    - contents: |
        # Managed by Salt (airflow_ha.monitoring). Local edits are overwritten.
        ARGS="--web.listen-address={{ ah.address }}:{{ pr.port }} --storage.tsdb.retention.time={{ m.retention_days }}d"

airflow_ha-monitoring-prometheus-package:
  pkg.installed:
    - name: {{ pr.pkg }}
    - install_recommends: false
    - require:
      - file: airflow_ha-monitoring-prometheus-args

airflow_ha-monitoring-prometheus-rules:
  file.managed:
    - name: /etc/prometheus/rules/airflow_ha.yml
    - source: salt://airflow_ha/monitoring/files/rules/airflow_ha.yml.jinja
    - template: jinja
    - context:
        alerts: {{ m.alerts | json }}
        backups: {{ ah.pgbackrest.enabled | json }}
    - makedirs: true
    - mode: "0644"
    - check_cmd: /usr/bin/promtool check rules
    - require:
      - pkg: airflow_ha-monitoring-prometheus-package

airflow_ha-monitoring-prometheus-config:
  file.managed:
    - name: /etc/prometheus/prometheus.yml
    - source: salt://airflow_ha/monitoring/files/prometheus.yml.jinja
    - template: jinja
    - mode: "0644"
    - check_cmd: /usr/bin/promtool check config
    - require:
      - file: airflow_ha-monitoring-prometheus-rules

{#- A restart (not a reload) on any change: the arguments need one, and the
    TSDB on disk survives it. #}
airflow_ha-monitoring-prometheus-service:
  service.running:
    - name: {{ pr.pkg }}
    - enable: true
    - require:
      - pkg: airflow_ha-monitoring-prometheus-package
    - watch:
      - file: airflow_ha-monitoring-prometheus-args
      - file: airflow_ha-monitoring-prometheus-rules
      - file: airflow_ha-monitoring-prometheus-config
{%- if m.here.alertmanager %}
{%- set am = m.alertmanager %}
{%- set peers = m.alertmanager_peers | map("regex_replace", "^", "--cluster.peer=") | join(" ") %}

airflow_ha-monitoring-alertmanager-args:
  file.managed:
    - name: /etc/default/{{ am.pkg }}
    - mode: "0644"
    - contents: |
        # Managed by Salt (airflow_ha.monitoring). Local edits are overwritten.
        ARGS="--web.listen-address={{ ah.address }}:{{ am.port }} --cluster.listen-address={{ ah.address }}:{{ am.cluster_port }} {{ peers }}"

airflow_ha-monitoring-alertmanager-package:
  pkg.installed:
    - name: {{ am.pkg }}
    - install_recommends: false
    - require:
      - file: airflow_ha-monitoring-alertmanager-args

airflow_ha-monitoring-alertmanager-config:
  file.managed:
    - name: /etc/prometheus/alertmanager.yml
    - source: salt://airflow_ha/monitoring/files/alertmanager.yml.jinja
    - template: jinja
    - mode: "0644"
    - require:
      - pkg: airflow_ha-monitoring-alertmanager-package

airflow_ha-monitoring-alertmanager-service:
  service.running:
    - name: {{ am.pkg }}
    - enable: true
    - watch:
      - file: airflow_ha-monitoring-alertmanager-args
      - file: airflow_ha-monitoring-alertmanager-config
{%- endif %}
