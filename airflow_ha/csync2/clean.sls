{#- Undo airflow_ha.csync2 on this node: units, listener, config, key,
    certificate and csync2's database. The synced folders (DAGs) stay.
    Clean every node together: peers pin this node's certificate.
    Runs only with pillar airflow_ha:clean: true. -#}
{%- from "airflow_ha/map.jinja" import ah with context %}
{%- set c = ah.csync2 %}
{%- if salt["pillar.get"]("airflow_ha:clean", False) is sameas true %}

airflow_ha-csync2-clean-services:
  service.dead:
    - names:
      - airflow_ha-csync2-watcher.service
      - airflow_ha-csync2-sync.timer
      - csync2.socket
    - enable: false

airflow_ha-csync2-clean-sysv-unmasked:
  service.unmasked:
    - name: csync2.service

airflow_ha-csync2-clean-files:
  file.absent:
    - names:
      - /etc/systemd/system/airflow_ha-csync2-watcher.service
      - /etc/systemd/system/airflow_ha-csync2-sync.service
      - /etc/systemd/system/airflow_ha-csync2-sync.timer
      - /etc/systemd/system/csync2.socket.d/airflow_ha.conf
      - /etc/cron.d/airflow_ha-csync2
      - /etc/airflow_ha/csync2-watch.json
      - /usr/local/lib/airflow_ha/csync2-watch
      - /usr/local/lib/airflow_ha/ah_secrets.py
      - /usr/local/lib/airflow_ha/ah_csync2.py
      - {{ c.config_file }}
      - {{ c.key_file }}
      - {{ c.ssl_key }}
      - {{ c.ssl_cert }}
    - require:
      - service: airflow_ha-csync2-clean-services

airflow_ha-csync2-clean-db:
  cmd.run:
    - name: rm -f /var/lib/csync2/*.db3 /var/lib/csync2/airflow_ha-*
    - onlyif: ls /var/lib/csync2/*.db3 /var/lib/csync2/airflow_ha-* >/dev/null 2>&1
    - require:
      - service: airflow_ha-csync2-clean-services

airflow_ha-csync2-clean-daemon-reload:
  cmd.run:
    - name: systemctl daemon-reload
    - onchanges:
      - file: airflow_ha-csync2-clean-files
{%- else %}

airflow_ha-csync2-clean-refused:
  test.fail_without_changes:
    - name: "airflow_ha.csync2.clean removes csync2's config, key, certificate and database from this node: run it with pillar airflow_ha:clean set to true"
{%- endif %}
