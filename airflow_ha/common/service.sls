{%- from "airflow_ha/map.jinja" import ah with context %}
{#- Patroni's TTLs and Airflow's log fetching break on clock skew. A container
    shares its host's clock, so there is nothing to run inside one. #}
{%- if ah.time_sync.managed %}
{%- set unit = "chrony" if ah.time_sync.daemon == "chrony" else "systemd-timesyncd" %}
{%- set conf = "/etc/chrony/sources.d/airflow_ha.sources" if unit == "chrony" else "/etc/systemd/timesyncd.conf.d/airflow_ha.conf" %}

airflow_ha-common-ntp-servers:
{%- if ah.time_sync.ntp_servers %}
  file.managed:
    - name: {{ conf }}
    - makedirs: true
    - mode: "0644"
    - contents: |
        # Managed by Salt (airflow_ha:time_sync:ntp_servers)
{%- if unit == "chrony" %}
{%- for server in ah.time_sync.ntp_servers %}
        server {{ server }} iburst
{%- endfor %}
{%- else %}
        [Time]
        NTP={{ ah.time_sync.ntp_servers | join(" ") }}
{%- endif %}
{%- else %}
  file.absent:
    - name: {{ conf }}
{%- endif %}
    - require:
      - pkg: airflow_ha-common-packages

airflow_ha-common-time-sync:
  service.running:
    - name: {{ unit }}
    - enable: true
    - watch:
      - file: airflow_ha-common-ntp-servers
{%- else %}

airflow_ha-common-time-sync:
  test.succeed_without_changes:
    - name: "time sync: {{ ah.minion_id }} is a container and uses its host's clock"
{%- endif %}
