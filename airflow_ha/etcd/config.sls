{#- /etc/default/etcd (read by Debian's etcd.service). ETCD_INITIAL_* only
    matter while the data dir is empty: etcd ignores them once the member has
    joined, so a re-apply never re-bootstraps. -#}
{%- from "airflow_ha/map.jinja" import ah with context %}
{%- set e = ah.etcd %}
include:
  - .install

airflow_ha-etcd-data-dir:
  file.directory:
    - name: {{ e.data_dir }}
    - user: etcd
    - group: etcd
    - mode: "0700"
    - require:
      - pkg: airflow_ha-etcd-packages

airflow_ha-etcd-config:
  file.managed:
    - name: {{ e.config_file }}
    - source: salt://airflow_ha/etcd/files/etcd.default.jinja
    - template: jinja
    - user: root
    - group: root
    - mode: "0644"
    - require:
      - pkg: airflow_ha-etcd-packages
