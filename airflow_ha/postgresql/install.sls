{#- Debian's postgresql-<major> creates and starts cluster <major>/main at
    install; Patroni must own the only cluster. createcluster.d stops that
    before the package. patroni.service is held (runtime mask) on its first
    install until /etc/patroni/config.yml exists. -#}
{%- from "airflow_ha/map.jinja" import ah with context %}
{%- set pg = ah.postgresql %}
{%- set p = pg.patroni %}
airflow_ha-postgresql-no-main-cluster:
  file.managed:
    - name: /etc/postgresql-common/createcluster.d/50-airflow_ha.conf
    - makedirs: true
    - mode: "0644"
    - contents: |
        # Managed by Salt (airflow_ha.postgresql): Patroni creates the only cluster.
        create_main_cluster = false

airflow_ha-postgresql-packages:
  pkg.installed:
    - pkgs:
      - postgresql-{{ pg.version }}
    - require:
      - file: airflow_ha-postgresql-no-main-cluster

{#- A main cluster made before this formula (package installed earlier) is
    dropped only while Patroni has not initialised its data dir: never touch
    data Patroni owns. #}
airflow_ha-postgresql-drop-debian-main:
  cmd.run:
    - name: pg_dropcluster --stop {{ pg.version }} main
    - onlyif: test -d /etc/postgresql/{{ pg.version }}/main
    - unless: test -f {{ pg.data_dir }}/PG_VERSION
    - require:
      - pkg: airflow_ha-postgresql-packages

airflow_ha-postgresql-patroni-hold-before-install:
  service.masked:
    - name: {{ p.service }}
    - runtime: true
    - unless: dpkg-query -W -f='${Status}' {{ p.pkg }} 2>/dev/null | grep -q 'ok installed'

airflow_ha-postgresql-patroni-packages:
  pkg.installed:
    - pkgs:
      - {{ p.pkg }}
{%- for extra in p.extra_pkgs %}
      - {{ extra }}
{%- endfor %}
    - require:
      - pkg: airflow_ha-postgresql-packages
      - service: airflow_ha-postgresql-patroni-hold-before-install

{#- Fixes to the distribution's Patroni that its newer releases carry (the
    OS layer lists them: parameters/os.yaml), applied before Patroni first
    starts. A Patroni already running as a replica restarts to load them; the
    leader keeps running (README: a switchover loads them there). #}
{%- if p.patches %}
airflow_ha-postgresql-patch-tool:
  pkg.installed:
    - name: patch
{%- endif %}
{%- for fix_id, fix in p.patches | dictsort %}
airflow_ha-postgresql-patroni-fix-{{ fix_id }}:
  file.patch:
    - name: {{ fix.target }}
    - source: salt://airflow_ha/postgresql/files/{{ fix.patch }}
    - require:
      - pkg: airflow_ha-postgresql-patroni-packages
      - pkg: airflow_ha-postgresql-patch-tool
    - require_in:
      - service: airflow_ha-postgresql-patroni-release-after-install
{%- endfor %}
{%- if p.patches %}

{#- One restart for all the fixes a run brings (not one per fix). #}
airflow_ha-postgresql-patroni-load-fixes:
  cmd.run:
    - name: systemctl restart {{ p.service }}
    - onlyif: systemctl is-active -q {{ p.service }}
    - unless: curl -sf -o /dev/null http://{{ ah.address }}:{{ p.rest_port }}/primary
    - onchanges:
{%- for fix_id in p.patches | sort %}
      - file: airflow_ha-postgresql-patroni-fix-{{ fix_id }}
{%- endfor %}
{%- endif %}

airflow_ha-postgresql-patroni-release-after-install:
  service.unmasked:
    - name: {{ p.service }}
    - runtime: true
    - require:
      - pkg: airflow_ha-postgresql-patroni-packages
