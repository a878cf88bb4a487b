{%- from "airflow_ha/map.jinja" import ah with context %}
{%- set c = ah.csync2 %}
{%- set units = "/etc/systemd/system" %}

{#- The one listener: Debian's csync2.socket (one csync2 -i per connection),
    moved to this node's address and the configured port. #}
airflow_ha-csync2-socket-dropin:
  file.managed:
    - name: {{ units }}/csync2.socket.d/airflow_ha.conf
    - source: salt://airflow_ha/csync2/files/csync2.socket.conf.jinja
    - template: jinja
    - makedirs: true
    - mode: "0644"
    - context:
        address: {{ ah.address }}
        port: {{ c.port }}

airflow_ha-csync2-units:
  file.managed:
    - names:
      - {{ units }}/airflow_ha-csync2-watcher.service:
        - source: salt://airflow_ha/csync2/files/airflow_ha-csync2-watcher.service
      - {{ units }}/airflow_ha-csync2-sync.service:
        - source: salt://airflow_ha/csync2/files/airflow_ha-csync2-sync.service
      - {{ units }}/airflow_ha-csync2-sync.timer:
        - source: salt://airflow_ha/csync2/files/airflow_ha-csync2-sync.timer.jinja
        - template: jinja
        - context:
            minutes: {{ c.periodic.interval_minutes }}
    - mode: "0644"

airflow_ha-csync2-daemon-reload:
  cmd.run:
    - name: systemctl daemon-reload
    - onchanges:
      - file: airflow_ha-csync2-socket-dropin
      - file: airflow_ha-csync2-units

airflow_ha-csync2-socket:
  service.running:
    - name: csync2.socket
    - enable: true
    - require:
      - cmd: airflow_ha-csync2-daemon-reload
      - {{ "file" if ah.csync2.certs else "cmd" }}: airflow_ha-csync2-ssl
      - file: airflow_ha-csync2-config
      - service: airflow_ha-csync2-sysv-masked
    - watch:
      - file: airflow_ha-csync2-socket-dropin

airflow_ha-csync2-watcher:
{%- if c.watcher.enabled %}
  service.running:
    - name: airflow_ha-csync2-watcher.service
    - enable: true
    - require:
      - service: airflow_ha-csync2-socket
      - file: airflow_ha-csync2-dirs
    - watch:
      - file: airflow_ha-csync2-units
      - file: airflow_ha-csync2-watch-script
      - file: airflow_ha-csync2-watch-utils
      - file: airflow_ha-csync2-watch-conf
      - file: airflow_ha-csync2-config
{%- else %}
  service.dead:
    - name: airflow_ha-csync2-watcher.service
    - enable: false
{%- endif %}

{%- if c.periodic.method == "timer" %}

airflow_ha-csync2-timer:
  service.running:
    - name: airflow_ha-csync2-sync.timer
    - enable: true
    - require:
      - service: airflow_ha-csync2-socket
    - watch:
      - file: airflow_ha-csync2-units

airflow_ha-csync2-cron:
  file.absent:
    - name: /etc/cron.d/airflow_ha-csync2
{%- else %}

airflow_ha-csync2-timer:
  service.dead:
    - name: airflow_ha-csync2-sync.timer
    - enable: false

airflow_ha-csync2-cron:
  file.managed:
    - name: /etc/cron.d/airflow_ha-csync2
    - mode: "0644"
    - contents: |
        # Managed by Salt (airflow_ha.csync2): full csync2 sync
        */{{ c.periodic.interval_minutes }} * * * * root /usr/bin/python3 /usr/local/lib/airflow_ha/csync2-watch --once >/dev/null 2>&1
    - require:
      - pkg: airflow_ha-csync2-packages
{%- endif %}
