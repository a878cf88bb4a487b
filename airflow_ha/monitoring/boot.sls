{#- The exporters, Prometheus and Alertmanager bind this node's address, and
    Debian's units restart them 100 ms apart (Prometheus: never): each that
    runs here gets the boot drop-in (common/files/boot-dropin.conf), so a
    boot that brings the address up late, or any failed exit, does not leave
    it dead. -#}
{%- from "airflow_ha/map.jinja" import ah with context %}
{%- set dropins = ah.monitoring.boot_dropins %}
{%- for unit, path in dropins | dictsort %}

airflow_ha-monitoring-{{ unit }}-boot-dropin:
  file.managed:
    - name: {{ path }}
    - source: salt://airflow_ha/common/files/boot-dropin.conf
    - makedirs: true
    - mode: "0644"
{%- endfor %}
{%- if dropins %}

airflow_ha-monitoring-boot-daemon-reload:
  cmd.run:
    - name: systemctl daemon-reload
    - onchanges:
{%- for unit in dropins | sort %}
      - file: airflow_ha-monitoring-{{ unit }}-boot-dropin
{%- endfor %}
{%- endif %}
