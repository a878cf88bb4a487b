{#- Undo airflow_ha.pgbackrest on this node: the TLS server, the backup
    timers, the configs, the TLS material, the check note and the package.
    The REPOSITORY IS KEPT (pgbackrest:repo_path on the backup node, repo2 in its
    bucket): remove it by hand when no backup in it is wanted any more.
    Patroni keeps archive_command until pgbackrest:enabled is false and
    airflow_ha.postgresql is applied. Runs only with pillar
    airflow_ha:clean: true. -#}
{%- from "airflow_ha/map.jinja" import ah with context %}
{%- set b = ah.pgbackrest %}
{%- if salt["pillar.get"]("airflow_ha:clean", false) is sameas true %}
airflow_ha-pgbackrest-clean-services:
  service.dead:
    - names:
      - airflow_ha-pgbackrest-backup-full.timer
      - airflow_ha-pgbackrest-backup-diff.timer
      - {{ b.service }}
    - enable: false

airflow_ha-pgbackrest-clean-packages:
  pkg.purged:
    - name: {{ b.pkg }}
    - require:
      - service: airflow_ha-pgbackrest-clean-services

airflow_ha-pgbackrest-clean-files:
  file.absent:
    - names:
      - {{ b.config_file }}
      - {{ b.repo_config_file }}
      - {{ b.tls.dir }}
      - {{ b.spool_path }}
      - {{ b.check_marker }}
      - /etc/systemd/system/airflow_ha-pgbackrest-backup@.service
      - /etc/systemd/system/airflow_ha-pgbackrest-backup-full.timer
      - /etc/systemd/system/airflow_ha-pgbackrest-backup-diff.timer
    - require:
      - pkg: airflow_ha-pgbackrest-clean-packages
{%- else %}
airflow_ha-pgbackrest-clean-refused:
  test.fail_without_changes:
    - name: airflow_ha.pgbackrest.clean
    - comment: "Refused: airflow_ha.pgbackrest.clean removes pgBackRest from this node: set pillar airflow_ha:clean: true to run it"
{%- endif %}
