{%- from "airflow_ha/map.jinja" import ah with context %}
{%- set c = ah.csync2 %}

{#- Without Recommends: Debian's csync2 recommends openbsd-inetd, which
    already listens on 30865 once installed, so csync2.socket then fails
    with "Address already in use" (seen on Debian 12); and a package upgrade
    re-adds csync2's inetd.conf line while inetd is present. #}
airflow_ha-csync2-packages:
  pkg.installed:
    - pkgs: {{ ([c.pkg, c.watcher_pkg, "openssl"] + (["cron"] if c.periodic.method == "cron" else [])) | json }}
    - install_recommends: false
    - reload_modules: true

{#- Debian also ships /etc/init.d/csync2 (a stand-alone daemon on the same
    port, disabled): masked, so nothing starts a second listener. #}
airflow_ha-csync2-sysv-masked:
  service.masked:
    - name: csync2.service
    - require:
      - pkg: airflow_ha-csync2-packages

{#- An inetd installed for something else: take csync2's line out of it. #}
airflow_ha-csync2-no-inetd:
  file.comment:
    - name: /etc/inetd.conf
    - regex: ^csync2\s
    - ignore_missing: true
    - backup: false
    - onlyif: test -f /etc/inetd.conf

airflow_ha-csync2-inetd-restart:
  cmd.run:
    - name: systemctl try-restart inetd.service
    - onchanges:
      - file: airflow_ha-csync2-no-inetd
