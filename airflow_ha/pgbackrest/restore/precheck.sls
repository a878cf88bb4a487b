{#- airflow_ha.orch.restore, before anything changes (db nodes): no earlier
    restore's data is still set aside, none is under way. -#}
{%- from "airflow_ha/map.jinja" import ah with context %}
{%- set b = ah.pgbackrest %}
airflow_ha-pgbackrest-restore-no-leftover:
  test.fail_without_changes:
    - name: >-
        {{ b.restore_aside }} holds the data set aside by an earlier restore: remove it (or move it
        elsewhere) once that restore is known good, then run the restore again
    - onlyif: test -e {{ b.restore_aside }}
    - failhard: true

airflow_ha-pgbackrest-restore-not-under-way:
  test.fail_without_changes:
    - name: >-
        {{ b.restore_marker }} exists: a restore is under way or stopped half way — finish it
        (airflow_ha.orch.restore again) or give it up (see README, restore procedure)
    - onlyif: test -e {{ b.restore_marker }}
    - failhard: true
