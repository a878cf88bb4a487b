{#- Debian's etcd-server starts a 1-member cluster from its default config at
    install, and that member then refuses to join ours. A runtime mask keeps
    the package's postinst from starting it on the FIRST install only; the
    service state starts it once our config is in place. -#}
{%- from "airflow_ha/map.jinja" import ah with context %}
airflow_ha-etcd-hold-before-install:
  service.masked:
    - name: {{ ah.etcd.service }}
    - runtime: true
    - unless: dpkg-query -W -f='${Status}' {{ ah.etcd.pkg }} 2>/dev/null | grep -q 'ok installed'

airflow_ha-etcd-packages:
  pkg.installed:
    - pkgs:
      - {{ ah.etcd.pkg }}
      - {{ ah.etcd.client_pkg }}
    - require:
      - service: airflow_ha-etcd-hold-before-install

airflow_ha-etcd-release-after-install:
  service.unmasked:
    - name: {{ ah.etcd.service }}
    - runtime: true
    - require:
      - pkg: airflow_ha-etcd-packages
