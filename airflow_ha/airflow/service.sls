{#- One systemd unit per component; enabled and running only where this
    node's roles ask for it, stopped and disabled elsewhere. Each running
    unit restarts when the venv changes or when a config group it reads
    changes (airflow.config_groups) - and only then. Airflow 3's
    dag-processor runs under an etcd lock (airflow-locked-run): exactly one
    is active in the cluster, another node takes over when it dies. The API
    server restarts in turn: one node at a time under an etcd lock, each
    waiting for its server's health (airflow-restart-in-turn). -#}
{%- from "airflow_ha/map.jinja" import ah with context %}
{%- set af = ah.airflow %}
{%- set comps = salt["airflow.components"](ah.roles, af.major) %}
{%- set groups = salt["airflow.config_groups"](salt["airflow.desired_config"](ah, secret_refs=True), af.major) %}
{%- set tls = ah.etcd.tls %}
{%- set locked_here = comps.get("dag-processor", {}).get("enabled", false) %}
{%- set rr = af.api_restart %}

include:
  - airflow_ha.csync2
  - .install
  - .config
  - .db
{%- if tls.enabled and (locked_here or rr.in_turn) %}
  - airflow_ha.etcd.tls

airflow_ha-airflow-etcd-tls-key:
  file.managed:
    - name: {{ tls.key_files.airflow }}
    - contents_pillar: airflow_ha:etcd:tls:certs:{{ ah.minion_id }}:key
    - user: {{ af.user }}
    - group: {{ af.group }}
    - mode: "0600"
    - show_changes: false
    - require:
      - user: airflow_ha-airflow-user
      - file: airflow_ha-etcd-tls-dir
{%- endif %}
{%- set units_here = comps.values() | selectattr("enabled") | map(attribute="unit") | list %}
{%- if units_here %}

{#- A node whose Airflow has never run here (added, or rebuilt blank) starts
    its units only with the whole DAG folder: the peers' csync2 watchers push
    it; this waits for them (no peer reachable: nothing to wait for). #}
airflow_ha-airflow-dags-caught-up:
  csync2.caught_up:
    - timeout: {{ ah.csync2.catch_up_timeout }}
    - unless: systemctl is-active -q {{ units_here | join(" ") }}
    - require:
      - service: airflow_ha-csync2-socket
{%- endif %}
{%- for comp, c in comps | dictsort %}
{%- set locked = comp == "dag-processor" %}

airflow_ha-airflow-unit-{{ comp }}:
  file.managed:
    - name: /etc/systemd/system/{{ c.unit }}.service
    - source: salt://airflow_ha/airflow/files/airflow.service.jinja
    - template: jinja
    - user: root
    - group: root
    - mode: '0644'
    - context:
        component: {{ comp }}
        command: {{ c.command }}
        af: {{ {"user": af.user, "group": af.group, "home": af.home, "venv": af.venv} | json }}
        locked: {{ locked }}
        lock_name: {{ ah.cluster_name }}/airflow/dag-processor
        lock_ttl: {{ af.dag_processor.lock_ttl }}
        etcd_endpoints: {{ ah.etcd.endpoints | join(",") }}
{%- if locked and tls.etcdctl_env %}
        etcd_tls_env: {{ tls.etcdctl_env | json }}
{%- endif %}
{%- set in_turn = comp in ["api-server", "webserver"] and rr.in_turn %}
{%- if c.enabled %}

airflow_ha-airflow-service-{{ comp }}:
  service.running:
    - name: {{ c.unit }}
    - enable: true
    - require:
      - airflow: airflow_ha-airflow-db-migrated
      - csync2: airflow_ha-airflow-dags-caught-up
{%- if locked %}
      - file: airflow_ha-airflow-locked-run
      - pkg: airflow_ha-airflow-etcd-client
{%- endif %}
{%- if in_turn %}

{#- A running API server whose config, venv or unit changed is queued for a
    restart in turn (the marker), never restarted here at once; a stopped
    one is simply started with the new files by the state above. #}
airflow_ha-airflow-restart-queued-{{ comp }}:
  cmd.run:
    - name: mkdir -p {{ rr.marker.rsplit("/", 1)[0] }} && touch {{ rr.marker }}
    - onlyif: systemctl is-active -q {{ c.unit }}
    - require_in:
      - service: airflow_ha-airflow-service-{{ comp }}
    - onchanges:
{%- else %}
    - watch:
{%- endif %}
      - file: airflow_ha-airflow-unit-{{ comp }}
{%- if locked and tls.enabled %}
      - file: airflow_ha-etcd-tls-ca
      - file: airflow_ha-etcd-tls-cert
      - file: airflow_ha-airflow-etcd-tls-key
{%- endif %}
      - pip: airflow_ha-airflow-package
{%- for name, group in groups | dictsort %}
{%- if comp in group.units %}
      - airflow: airflow_ha-airflow-config-{{ name }}
{%- endif %}
{%- endfor %}
{%- if comp in ["worker", "scheduler", "flower"] %}
      - file: airflow_ha-airflow-celery-config
{%- endif %}
{%- if in_turn %}

airflow_ha-airflow-restart-in-turn-{{ comp }}:
  cmd.run:
    - name: >-
        {{ rr.script }} {{ rr.lock }} {{ c.unit }}
        {{ af.api_health_url }} {{ rr.marker }} {{ af.api_restart_timeout }} {{ rr.peer_health_urls | join(" ") }}
    - onlyif: test -e {{ rr.marker }}
    - env:
      - ETCDCTL_ENDPOINTS: {{ ah.etcd.endpoints | join(",") }}
{%- for k, v in tls.etcdctl_env | dictsort %}
      - {{ k }}: {{ v }}
{%- endfor %}
    - require:
      - service: airflow_ha-airflow-service-{{ comp }}
      - cmd: airflow_ha-airflow-restart-queued-{{ comp }}
      - file: airflow_ha-airflow-restart-in-turn
      - pkg: airflow_ha-airflow-etcd-client
{%- if tls.enabled %}
      - file: airflow_ha-airflow-etcd-tls-key
{%- endif %}
{%- endif %}
{%- else %}

airflow_ha-airflow-service-{{ comp }}:
  service.dead:
    - name: {{ c.unit }}
    - enable: false
    - require:
      - file: airflow_ha-airflow-unit-{{ comp }}
{%- endif %}
{%- endfor %}
{#- Units of the other major version (after a 2.x <-> 3.x switch): stopped, removed. #}
{%- for comp in ["api-server", "webserver", "dag-processor"] if comp not in comps %}

airflow_ha-airflow-service-{{ comp }}:
  service.dead:
    - name: airflow-{{ comp }}
    - enable: false

airflow_ha-airflow-unit-{{ comp }}:
  file.absent:
    - name: /etc/systemd/system/airflow-{{ comp }}.service
    - require:
      - service: airflow_ha-airflow-service-{{ comp }}
{%- endfor %}

