{#- Airflow from PyPI into a venv: system user, venv (Salt's virtualenv state
    with python3 -m venv), pinned apache-airflow[extras] with the formula's
    frozen constraints (Salt's pip state). pip's index, find-links, proxy
    and trusted hosts go in through the environment (PIP_*), never argv,
    so proxy credentials do not show in ps or job returns. pip.installed
    skips the install when the pinned version is present; changing
    ah.airflow.version upgrades in place (db.sls then migrates); a change of
    major version (2.x -> 3.x) rebuilds the venv first. -#}
{%- from "airflow_ha/map.jinja" import ah with context %}
{%- set af = ah.airflow %}
{%- set pip = ah.proxy.pip %}
{%- set constraints = salt["file.dirname"](af.venv) ~ "/" ~ af.constraints_file %}
{%- set pip_env = {"PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"} %}
{%- if pip.index_url %}{%- do pip_env.update({"PIP_INDEX_URL": pip.index_url}) %}{%- endif %}
{%- if pip.find_links %}{%- do pip_env.update({"PIP_FIND_LINKS": pip.find_links | join(" ")}) %}{%- endif %}
{%- if pip.no_index %}{%- do pip_env.update({"PIP_NO_INDEX": "1"}) %}{%- endif %}
{%- if pip.proxy %}{%- do pip_env.update({"PIP_PROXY": pip.proxy, "HTTPS_PROXY": pip.proxy, "HTTP_PROXY": pip.proxy}) %}{%- endif %}
{%- if pip.trusted_hosts %}{%- do pip_env.update({"PIP_TRUSTED_HOST": pip.trusted_hosts | join(" ")}) %}{%- endif %}

airflow_ha-airflow-group:
  group.present:
    - name: {{ af.group }}
    - system: true

airflow_ha-airflow-user:
  user.present:
    - name: {{ af.user }}
    - gid: {{ af.group }}
    - home: {{ af.home }}
    - createhome: false
    - shell: /usr/sbin/nologin
    - system: true
    - require:
      - group: airflow_ha-airflow-group

airflow_ha-airflow-venv-parent:
  file.directory:
    - name: {{ salt["file.dirname"](af.venv) }}
    - user: root
    - group: root
    - mode: '0755'
    - makedirs: true

airflow_ha-airflow-constraints:
  file.managed:
    - name: {{ constraints }}
{%- if af.constraints_url %}
    - source: {{ af.constraints_url }}
    - skip_verify: true
{%- else %}
    - source: salt://airflow_ha/airflow/files/{{ af.constraints_file }}
{%- endif %}
    - user: root
    - group: root
    - mode: '0644'
    - require:
      - file: airflow_ha-airflow-venv-parent

# A 2.x <-> 3.x version switch rebuilds the venv (pip cannot upgrade across
# Airflow 3's package split in place: see _states/airflow.py venv_compatible).
airflow_ha-airflow-venv-compatible:
  airflow.venv_compatible:
    - name: {{ af.venv }}
    - version: {{ af.version }}

airflow_ha-airflow-venv:
  virtualenv.managed:
    - name: {{ af.venv }}
    - venv_bin: /usr/bin/python3
    - user: root
    - require:
      - file: airflow_ha-airflow-venv-parent
      - airflow: airflow_ha-airflow-venv-compatible

{#- pip.installed compares the version only (not extras), through a pip
    start in the venv (4-10 s); the dist-info folder says the same at once. #}
airflow_ha-airflow-package:
  pip.installed:
    - name: apache-airflow[{{ af.extras | join(",") }}]=={{ af.version }}
    - unless: ls -d {{ af.venv }}/lib/python3*/site-packages/apache_airflow-{{ af.version }}.dist-info >/dev/null 2>&1
    - bin_env: {{ af.venv }}
    - env_vars: {{ pip_env | json }}
    - proxy: false
    - extra_args:
      - --constraint: {{ constraints }}
    - timeout: 120
    - require:
      - virtualenv: airflow_ha-airflow-venv
      - file: airflow_ha-airflow-constraints

airflow_ha-airflow-helper:
  file.managed:
    - name: {{ af.venv }}/bin/airflow-ha-helper
    - source: salt://airflow_ha/airflow/files/airflow_ha_helper.py
    - user: root
    - group: root
    - mode: '0755'
    - require:
      - virtualenv: airflow_ha-airflow-venv
      - file: airflow_ha-airflow-helper-secrets

{#- The helper's secret policy (sensitive keys, the mask): the SAME file the
    Salt modules load as __utils__["ah_secrets.*"], not a copy. salt://_utils/
    is served because the formula's file root is the repository root (lab,
    render and salt-factories tiers; kitchen.yml lists _utils next to
    _modules/_states). The helper imports it from its own directory. #}
airflow_ha-airflow-helper-secrets:
  file.managed:
    - name: {{ af.venv }}/bin/ah_secrets.py
    - source: salt://_utils/ah_secrets.py
    - user: root
    - group: root
    - mode: '0644'
    - require:
      - virtualenv: airflow_ha-airflow-venv

{%- if (af.major >= 3 and "dag_processor" in ah.roles) or af.api_restart.in_turn %}

# etcdctl for the dag-processor's lock and the API servers' restart in turn,
# also on nodes without the db role.
airflow_ha-airflow-etcd-client:
  pkg.installed:
    - name: {{ ah.etcd.client_pkg }}
{%- endif %}

airflow_ha-airflow-restart-in-turn:
  file.managed:
    - name: {{ af.api_restart.script }}
    - source: salt://airflow_ha/airflow/files/airflow-restart-in-turn.sh
    - makedirs: true
    - user: root
    - group: root
    - mode: '0755'

airflow_ha-airflow-locked-run:
  file.managed:
    - name: /usr/local/lib/airflow_ha/airflow-locked-run
    - source: salt://airflow_ha/airflow/files/airflow-locked-run.sh
    - makedirs: true
    - user: root
    - group: root
    - mode: '0755'
