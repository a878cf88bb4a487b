{%- from "airflow_ha/map.jinja" import ah with context %}
include:
  - .install

airflow_ha-haproxy-config:
  file.managed:
    - name: {{ ah.haproxy.config_file }}
    - source: salt://airflow_ha/haproxy/files/haproxy.cfg.jinja
    - template: jinja
    - user: root
    - group: haproxy
    - mode: "0640"
    - check_cmd: /usr/sbin/haproxy -c -q -f
    - require:
      - pkg: airflow_ha-haproxy-package
