{#- Undo airflow_ha.postgresql: DESTROYS the database. Runs only with pillar
    airflow_ha:clean: true. -#}
{%- from "airflow_ha/map.jinja" import ah with context %}
{%- set pg = ah.postgresql %}
{%- if salt["pillar.get"]("airflow_ha:clean", false) is sameas true %}
airflow_ha-postgresql-clean-timer:
  service.dead:
    - name: airflow_ha-etcd-leader-elsewhere.timer
    - enable: false

airflow_ha-postgresql-clean-service:
  service.dead:
    - name: {{ pg.patroni.service }}
    - enable: false

airflow_ha-postgresql-clean-packages:
  pkg.purged:
    - pkgs:
      - {{ pg.patroni.pkg }}
      - postgresql-{{ pg.version }}
    - require:
      - service: airflow_ha-postgresql-clean-service

airflow_ha-postgresql-clean-files:
  file.absent:
    - names:
      - {{ pg.data_dir }}
      - {{ pg.patroni.config_file }}
      - {{ pg.patroni.boot_dropin }}
      - /var/lib/postgresql/.pgpass.patroni
      - /etc/postgresql-common/createcluster.d/50-airflow_ha.conf
      - /etc/systemd/system/airflow_ha-etcd-leader-elsewhere.service
      - /etc/systemd/system/airflow_ha-etcd-leader-elsewhere.timer
      - /usr/local/lib/airflow_ha/etcd-leader-elsewhere
    - require:
      - pkg: airflow_ha-postgresql-clean-packages
{%- else %}
airflow_ha-postgresql-clean-refused:
  test.fail_without_changes:
    - name: airflow_ha.postgresql.clean
    - comment: "Refused: airflow_ha.postgresql.clean deletes the database: set pillar airflow_ha:clean: true to run it"
{%- endif %}
