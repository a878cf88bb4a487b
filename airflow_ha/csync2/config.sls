{%- from "airflow_ha/map.jinja" import ah with context %}
{%- set c = ah.csync2 %}
{%- set dirs = [ah.airflow.home ~ "/dags", ah.airflow.home ~ "/plugins"] + c.extra_dirs %}
{#- Owned by the Airflow user once it exists; until then root creates them
    and airflow_ha.airflow takes them over. #}
{%- set airflow_user = salt["user.info"](ah.airflow.user) %}

airflow_ha-csync2-dirs:
  file.directory:
    - names: {{ dirs | json }}
    - makedirs: true
{%- if airflow_user %}
    - user: {{ ah.airflow.user }}
    - group: {{ ah.airflow.group }}
{%- endif %}

airflow_ha-csync2-backup-dir:
  file.directory:
    - name: {{ c.backup_dir }}
    - mode: "0700"
    - makedirs: true

airflow_ha-csync2-psk:
  file.managed:
    - name: {{ c.key_file }}
    - contents_pillar: airflow_ha:secrets:csync2_psk
    - mode: "0600"
    - user: root
    - group: root
    - show_changes: false
    - require:
      - pkg: airflow_ha-csync2-packages

{#- This node's key + self-signed certificate: from pillar (csync2:certs),
    so a rebuilt host presents the certificate its peers pinned, else made
    once here and kept (peers pin it; a new one is refused until the pin is
    cleared: csync2.forget_peer_cert). The subject is the same on every
    node: with a different CN per node csync2 2.0 fails the handshake
    (GNUTLS_E_CERTIFICATE_REQUIRED, client rc 141, "Config command
    failed."), while per-node keys with one subject work (seen on Debian 12
    across three nodes). #}
{%- if c.certs %}

airflow_ha-csync2-ssl-key:
  file.managed:
    - name: {{ c.ssl_key }}
    - contents_pillar: airflow_ha:csync2:certs:{{ ah.minion_id }}:key
    - mode: "0600"
    - user: root
    - group: root
    - show_changes: false
    - require:
      - pkg: airflow_ha-csync2-packages

airflow_ha-csync2-ssl:
  file.managed:
    - name: {{ c.ssl_cert }}
    - contents_pillar: airflow_ha:csync2:certs:{{ ah.minion_id }}:cert
    - mode: "0644"
    - user: root
    - group: root
    - require:
      - file: airflow_ha-csync2-ssl-key
{%- else %}

airflow_ha-csync2-ssl:
  cmd.run:
    - name: >-
        umask 077 &&
        openssl req -x509 -newkey rsa:2048 -nodes -days 36500 -subj "/CN={{ ah.cluster_name }}-csync2"
        -keyout {{ c.ssl_key }}.new -out {{ c.ssl_cert }}.new 2>/dev/null &&
        mv -f {{ c.ssl_key }}.new {{ c.ssl_key }} && mv -f {{ c.ssl_cert }}.new {{ c.ssl_cert }}
    - creates:
      - {{ c.ssl_key }}
      - {{ c.ssl_cert }}
    - require:
      - pkg: airflow_ha-csync2-packages
{%- endif %}

airflow_ha-csync2-config:
  file.managed:
    - name: {{ c.config_file }}
    - source: salt://airflow_ha/csync2/files/csync2.cfg.jinja
    - template: jinja
    - mode: "0644"
    - reload_modules: true
    - context:
        group: airflow_ha
        hosts: {{ ah.nodes | sort | json }}
        key_file: {{ c.key_file }}
        dirs: {{ dirs | json }}
        exclude: {{ c.exclude | json }}
        auto: {{ c.auto }}
        backup_dir: {{ c.backup_dir }}
        backup_generations: {{ c.backup_generations }}
    - require:
      - file: airflow_ha-csync2-psk
      - pkg: airflow_ha-csync2-packages

{%- if c.certs %}

{#- Peers whose pillar certificate changed (or that switched to pillar
    certificates) are accepted again: their old pins are dropped. Switching
    a running cluster to csync2:certs takes two applies (a peer may pin an
    old certificate again in between). #}
airflow_ha-csync2-pins:
  csync2.pins_current:
    - require:
      - file: airflow_ha-csync2-config
      - file: airflow_ha-csync2-ssl
{%- endif %}

airflow_ha-csync2-watch-script:
  file.managed:
    - name: /usr/local/lib/airflow_ha/csync2-watch
    - source: salt://airflow_ha/csync2/files/csync2-watch.py
    - mode: "0755"
    - makedirs: true
    - require:
      - file: airflow_ha-csync2-watch-utils

{#- The watcher imports the formula's secret policy and csync2 output parser
    from its own directory: the same _utils files Salt syncs (the file root
    is the repository root; kitchen.yml lists _utils), not copies. #}
airflow_ha-csync2-watch-utils:
  file.managed:
    - names:
      - /usr/local/lib/airflow_ha/ah_secrets.py:
        - source: salt://_utils/ah_secrets.py
      - /usr/local/lib/airflow_ha/ah_csync2.py:
        - source: salt://_utils/ah_csync2.py
    - mode: "0644"
    - makedirs: true

airflow_ha-csync2-watch-conf:
  file.managed:
    - name: /etc/airflow_ha/csync2-watch.json
    - mode: "0644"
    - makedirs: true
    - contents: {{ {"dirs": dirs, "exclude": c.exclude, "port": c.port, "nodes": ah.nodes | sort,
                    "debounce_ms": c.watcher.debounce_ms, "max_delay_ms": c.watcher.max_delay_ms,
                    "tie_break": c.watcher.tie_break, "auto": c.auto, "state_dir": "/var/lib/csync2"} | json | json }}
