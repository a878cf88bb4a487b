{#- salt-run state.orchestrate airflow_ha.orch.restore \
        pillar='{"restore": {"target_time": "2024-05-01 12:00:00+00"} }'
    (or "latest"; optional "node": the db node that restores, "timeout": s)

    Restores the whole database cluster from pgBackRest's repository to the
    target, in order, each stage only when the one before succeeded:
      plan      on the backup node: a WAL switch so the newest WAL is archived,
                then the target checked against the backups' window: refused,
                with the reason, before anything changes
      precheck  no earlier restore left its data set aside or half done
      stop      Airflow on every node; Patroni on the replicas
      stop-db   Patroni on the leader; every data directory set aside
                (<data_dir>.pre-restore, kept) and an empty one in its place
      dcs       the cluster's keys removed from the DCS (patronictl remove)
      bootstrap one node: Patroni bootstraps from the repository to the target
                (pgBackRest restore, WAL replay, promote) and leads
      backup    a full backup of the restored cluster (its new timeline), with
                no expire: nothing the restore started from is removed
      rejoin    the other db nodes clone the new leader (from that backup)
      whole     one leader, every member running; the restore's marker removed
      converge  airflow_ha.postgresql (config.yml without the restore, the DCS
                settings), airflow_ha.airflow (units started), a health gate
      report    pgbackrest.info: the backups and WAL after the restore
    The repository is only read, and written by the new backup: no
    stanza-delete, no expire. -#}
{%- if "airflow_ha.settings" not in salt %}

airflow_ha-orch-restore-modules:
  test.fail_without_changes:
    - name: >-
        airflow_ha.orch.restore needs the formula's modules on the master: run
        salt-run saltutil.sync_all, then orchestrate again
    - failhard: true
{%- else %}
{%- import_yaml "airflow_ha/parameters/defaults.yaml" as defaults %}
{%- import_yaml "airflow_ha/parameters/os.yaml" as os_layers %}
{%- set raw = pillar.get("airflow_ha", {}) %}
{%- set given = pillar.get("restore") %}
{%- set merged = dict(raw, restore=given) if raw is mapping and given is mapping else raw %}
{%- set ah = salt["airflow_ha.settings"](defaults, os_layers, merged, cluster=True) %}
{%- if raw is not mapping or not raw.get("nodes") %}

airflow_ha-orch-restore-target:
  test.fail_without_changes:
    - name: >-
        airflow_ha.orch.restore found no nodes: the pillar the master sees has no
        airflow_ha:nodes (assign the airflow_ha pillar to the master's minion id too)
    - failhard: true
{%- elif given is not mapping or not given.get("target_time") %}

airflow_ha-orch-restore-what:
  test.fail_without_changes:
    - name: >-
        airflow_ha.orch.restore needs the target: pillar='{"restore": {"target_time":
        "2024-05-01 12:00:00+00"} }' (a time with its zone) or {"target_time": "latest"}
    - failhard: true
{%- elif ah.errors %}

airflow_ha-orch-restore-pillar:
  test.fail_without_changes:
    - name: {{ salt["airflow_ha.format_errors"](ah.errors) | json }}
    - failhard: true
{%- else %}
{%- set b = ah.pgbackrest %}
{%- set r = ah.restore %}
{%- set db = b.db_nodes %}
{%- set others = db | reject("equalto", r.node) | list %}
{%- set all_nodes = ah.nodes | list %}
{#- what the minions' states read as airflow_ha:restore #}
{%- set what = {"target_time": r.target, "node": r.node, "timeout": r.timeout} %}
{%- set flag = {"airflow_ha": {"restore": what} } %}
{%- set steps = [
      ("precheck", db, "airflow_ha.pgbackrest.restore.precheck", false),
      ("stop", all_nodes, "airflow_ha.pgbackrest.restore.stop", true),
      ("stop-db", db, "airflow_ha.pgbackrest.restore.stop_db", false),
      ("dcs", [r.node], "airflow_ha.pgbackrest.restore.dcs", false),
      ("bootstrap", [r.node], "airflow_ha.pgbackrest.restore.bootstrap", true),
    ] %}

airflow_ha-orch-restore-plan:
  salt.function:
    - name: pgbackrest.restore_plan
    - tgt: {{ b.repo_host }}
    - kwarg:
        target_time: {{ r.target | json }}
        stanza: {{ b.stanza }}
        config: {{ b.repo_config_file }}
    - timeout: 600
    - failhard: true
{%- set previous = "airflow_ha-orch-restore-plan" %}
{%- for step, targets, sls, with_flag in steps %}

airflow_ha-orch-restore-{{ step }}:
  salt.state:
    - tgt: {{ targets | json }}
    - tgt_type: list
    - sls: [{{ sls }}]
{%- if with_flag %}
    - pillar: {{ flag | json }}
{%- endif %}
    - queue: true
    - failhard: true
    - require:
      - salt: {{ previous }}
{%- set previous = "airflow_ha-orch-restore-" ~ step %}
{%- endfor %}

airflow_ha-orch-restore-backup:
  salt.function:
    - name: pgbackrest.backup
    - tgt: {{ b.repo_host }}
    - kwarg:
        type: full
        stanza: {{ b.stanza }}
        config: {{ b.repo_config_file }}
        expire: false
        standby: false
    - timeout: {{ r.timeout }}
    - failhard: true
    - require:
      - salt: airflow_ha-orch-restore-bootstrap
{%- if others %}

airflow_ha-orch-restore-rejoin:
  salt.state:
    - tgt: {{ others | json }}
    - tgt_type: list
    - sls: [airflow_ha.pgbackrest.restore.rejoin]
    - queue: true
    - failhard: true
    - require:
      - salt: airflow_ha-orch-restore-backup
{%- endif %}

airflow_ha-orch-restore-whole:
  salt.state:
    - tgt: {{ r.node }}
    - sls: [airflow_ha.pgbackrest.restore.whole]
    - pillar: {{ flag | json }}
    - queue: true
    - failhard: true
    - require:
      - salt: airflow_ha-orch-restore-{{ "rejoin" if others else "backup" }}

airflow_ha-orch-restore-done:
  salt.state:
    - tgt: {{ db | json }}
    - tgt_type: list
    - sls: [airflow_ha.pgbackrest.restore.done]
    - queue: true
    - failhard: true
    - require:
      - salt: airflow_ha-orch-restore-whole

airflow_ha-orch-restore-postgresql:
  salt.state:
    - tgt: {{ db | json }}
    - tgt_type: list
    - sls: [airflow_ha.postgresql]
    - queue: true
    - failhard: true
    - require:
      - salt: airflow_ha-orch-restore-done

airflow_ha-orch-restore-airflow:
  salt.state:
    - tgt: {{ all_nodes | json }}
    - tgt_type: list
    - sls: [airflow_ha.airflow]
    - queue: true
    - failhard: true
    - require:
      - salt: airflow_ha-orch-restore-postgresql

airflow_ha-orch-restore-health:
  salt.function:
    - name: airflow.wait_healthy
    - tgt: {{ all_nodes | json }}
    - tgt_type: list
    - kwarg:
        timeout: 300
    - timeout: 360
    - require:
      - salt: airflow_ha-orch-restore-airflow

airflow_ha-orch-restore-report:
  salt.function:
    - name: pgbackrest.info
    - tgt: {{ b.repo_host }}
    - kwarg:
        stanza: {{ b.stanza }}
        config: {{ b.repo_config_file }}
    - require:
      - salt: airflow_ha-orch-restore-health
{%- endif %}
{%- endif %}
