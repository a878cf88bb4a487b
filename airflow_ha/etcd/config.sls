{#- /etc/default/etcd (read by Debian's etcd.service), and the day-1
    ETCD_INITIAL_CLUSTER* in a file of their own that a drop-in adds: etcd
    reads them only while the data dir is empty, so a re-apply never
    re-bootstraps and a node added or removed (the member list changes)
    restarts no running member. With etcd:tls:enabled, also
    the CA, this node's certificate (.tls) and etcd's copy of its key. The
    boot drop-in starts etcd after the network is online and again after a
    failed exit (Debian's unit: Restart=on-abnormal). -#}
{%- from "airflow_ha/map.jinja" import ah with context %}
{%- set e = ah.etcd %}
include:
  - .install
{%- if e.tls.enabled %}
  - .tls
{%- endif %}

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

airflow_ha-etcd-initial:
  file.managed:
    - name: {{ e.initial_env }}
    - source: salt://airflow_ha/etcd/files/etcd.initial.jinja
    - template: jinja
    - user: root
    - group: root
    - mode: "0644"
    - require:
      - pkg: airflow_ha-etcd-packages

{#- The join settings airflow_ha_etcd.joined writes for a blank member that
    joins a running cluster (a rebuilt or added node) override
    /etc/default/etcd's day-1 bootstrap ones; etcd reads neither once its
    data dir holds the member. #}
airflow_ha-etcd-join-dropin:
  file.managed:
    - name: {{ e.join_dropin }}
    - makedirs: true
    - mode: "0644"
    - contents: |
        # Managed by Salt (airflow_ha.etcd).
        [Service]
        EnvironmentFile={{ e.initial_env }}
        EnvironmentFile=-{{ e.join_env }}

airflow_ha-etcd-boot-dropin:
  file.managed:
    - name: {{ e.boot_dropin }}
    - source: salt://airflow_ha/common/files/boot-dropin.conf
    - makedirs: true
    - mode: "0644"

airflow_ha-etcd-daemon-reload:
  cmd.run:
    - name: systemctl daemon-reload
    - onchanges:
      - file: airflow_ha-etcd-join-dropin
      - file: airflow_ha-etcd-boot-dropin
{%- if e.tls.enabled %}

airflow_ha-etcd-tls-key:
  file.managed:
    - name: {{ e.tls.key_files.etcd }}
    - contents_pillar: airflow_ha:etcd:tls:certs:{{ ah.minion_id }}:key
    - user: etcd
    - group: etcd
    - mode: "0600"
    - show_changes: false
    - require:
      - pkg: airflow_ha-etcd-packages
      - file: airflow_ha-etcd-tls-dir
{%- endif %}
