{#- airflow.cfg key by key through airflow.config_managed (no full template):
    the file is created empty (0640 root:airflow) BEFORE anything can run
    Airflow, so Airflow never writes one with random keys. Keys are grouped
    by the components that read them (airflow.config_groups), so a change
    restarts only those units (service.sls watches the groups). Secrets are
    passed as pillar references (secret_refs=True: @@pillar:airflow_ha:secrets:…@@)
    that airflow.config_managed resolves on the minion: the rendered states
    hold none. -#}
{%- from "airflow_ha/map.jinja" import ah with context %}
{%- set af = ah.airflow %}
{%- set cfg = af.home ~ "/airflow.cfg" %}
{%- set groups = salt["airflow.config_groups"](salt["airflow.desired_config"](ah, secret_refs=True), af.major) %}

include:
  - .install

airflow_ha-airflow-home:
  file.directory:
    - name: {{ af.home }}
    - user: {{ af.user }}
    - group: {{ af.group }}
    - mode: '0750'
    - require:
      - user: airflow_ha-airflow-user

{#- logs may hold what tasks print: not world-readable #}
{%- for sub, mode in [("dags", "0755"), ("plugins", "0755"), ("logs", "0750")] %}

airflow_ha-airflow-dir-{{ sub }}:
  file.directory:
    - name: {{ af.home }}/{{ sub }}
    - user: {{ af.user }}
    - group: {{ af.group }}
    - mode: '{{ mode }}'
    - require:
      - file: airflow_ha-airflow-home
{%- endfor %}

airflow_ha-airflow-config-dir:
  file.directory:
    - name: {{ af.home }}/config
    - user: root
    - group: {{ af.group }}
    - mode: '0750'
    - require:
      - file: airflow_ha-airflow-home

airflow_ha-airflow-celery-config:
  file.managed:
    - name: {{ af.home }}/config/airflow_ha_celery_config.py
    - source: salt://airflow_ha/airflow/files/airflow_ha_celery_config.py
    - user: root
    - group: {{ af.group }}
    - mode: '0640'
    - require:
      - file: airflow_ha-airflow-config-dir

airflow_ha-airflow-cfg-file:
  file.managed:
    - name: {{ cfg }}
    - replace: false
    - contents: |
        # airflow.cfg for {{ ah.minion_id }}, keys set by the airflow_ha formula
        # (state airflow.config_managed). Other keys may be added by hand.
    - user: root
    - group: {{ af.group }}
    - mode: '0640'
    - require:
      - file: airflow_ha-airflow-home
{%- for name, group in groups | dictsort %}

airflow_ha-airflow-config-{{ name }}:
  airflow.config_managed:
    - name: {{ cfg }}
    - sections: {{ group["values"] | json }}
    - require:
      - file: airflow_ha-airflow-cfg-file
{%- endfor %}
