{#- etcd.service is Type=notify: a member started alone blocks until a quorum
    of members runs. Start without blocking (every db node does the same in
    the same run), then wait, bounded, for the local member to be healthy.
    A changed config or TLS file (CA, certificate, key) restarts a running
    member. -#}
{%- from "airflow_ha/map.jinja" import ah with context %}
include:
  - .install
  - .config

airflow_ha-etcd-enabled:
  service.enabled:
    - name: {{ ah.etcd.service }}
    - require:
      - service: airflow_ha-etcd-release-after-install

{#- service.running cannot be used: with no_block it checks `is-active` at
    once and reports a still "activating" member as failed. A member that was
    already up (with an older config) restarts; one that is down starts. #}
{%- set up = "systemctl is-active " ~ ah.etcd.service ~ " | grep -qxE 'active|activating|reloading'" %}
{%- set tls_files = ["airflow_ha-etcd-tls-ca", "airflow_ha-etcd-tls-cert", "airflow_ha-etcd-tls-key"] if ah.etcd.tls.enabled else [] %}
airflow_ha-etcd-restart-on-config:
  cmd.run:
    - name: systemctl restart --no-block {{ ah.etcd.service }}
    - onchanges:
      - file: airflow_ha-etcd-config
{%- for sid in tls_files %}
      - file: {{ sid }}
{%- endfor %}
    - onlyif: {{ up | yaml_dquote }}
    - require:
      - service: airflow_ha-etcd-enabled
      - file: airflow_ha-etcd-data-dir

{#- A blank data dir on a host the running cluster already knows (rebuilt)
    or does not know (added): fix the membership before the member starts
    (airflow_ha_etcd.join_plan; refuses when quorum would be at risk). #}
airflow_ha-etcd-joined:
  airflow_ha_etcd.joined:
    - name: {{ ah.minion_id }}
    - peer_url: {{ ah.etcd.peer_url }}
    - endpoints: {{ ah.etcd.peer_endpoints | json }}
    - data_dir: {{ ah.etcd.data_dir }}
    - join_env: {{ ah.etcd.join_env }}
{%- if ah.etcd.tls.enabled %}
    - cacert: {{ ah.etcd.tls.ca_file }}
    - cert: {{ ah.etcd.tls.cert_file }}
    - key: {{ ah.etcd.tls.key_files.etcd }}
{%- endif %}
    - unless: {{ up | yaml_dquote }}
    - require:
      - cmd: airflow_ha-etcd-daemon-reload
      - file: airflow_ha-etcd-data-dir
{%- for sid in tls_files %}
      - file: {{ sid }}
{%- endfor %}

airflow_ha-etcd-service:
  cmd.run:
    - name: systemctl start --no-block {{ ah.etcd.service }}
    - unless: {{ up | yaml_dquote }}
    - require:
      - airflow_ha_etcd: airflow_ha-etcd-joined
      - cmd: airflow_ha-etcd-restart-on-config
      - file: airflow_ha-etcd-config
      - file: airflow_ha-etcd-initial
{%- for sid in tls_files %}
      - file: {{ sid }}
{%- endfor %}

airflow_ha-etcd-wait-healthy:
  airflow_ha_etcd.healthy:
    - name: {{ ah.etcd.local_url }}
    - timeout: {{ ah.etcd.wait_timeout }}
    - interval: 2
{%- if ah.etcd.tls.enabled %}
    - cacert: {{ ah.etcd.tls.ca_file }}
    - cert: {{ ah.etcd.tls.cert_file }}
    - key: {{ ah.etcd.tls.key_files.etcd }}
{%- endif %}
    - require:
      - cmd: airflow_ha-etcd-service
      - cmd: airflow_ha-etcd-restart-on-config

{#- The member of a db node that left airflow_ha:nodes (scale-in) is
    removed once it is down; asked from the first db node only. #}
{%- if ah.minion_id == ah.members.db[0].id %}
airflow_ha-etcd-departed:
  airflow_ha_etcd.departed_removed:
    - name: {{ ah.etcd.local_url }}
    - peer_urls: {{ ah.etcd.peer_urls | json }}
{%- if ah.etcd.tls.enabled %}
    - cacert: {{ ah.etcd.tls.ca_file }}
    - cert: {{ ah.etcd.tls.cert_file }}
    - key: {{ ah.etcd.tls.key_files.etcd }}
{%- endif %}
    - require:
      - airflow_ha_etcd: airflow_ha-etcd-wait-healthy
{%- endif %}

{#- An etcd started by the package before this formula (the untouched
    default 1-member bootstrap) lives in /var/lib/etcd/default. Our member
    uses its own data dir, so the default one never held cluster data: drop it
    (never when data_dir was pointed at it). -#}
{%- if ah.etcd.data_dir.rstrip("/") != "/var/lib/etcd/default" %}
airflow_ha-etcd-default-bootstrap-absent:
  file.absent:
    - name: /var/lib/etcd/default
    - require:
      - cmd: airflow_ha-etcd-service
{%- endif %}
