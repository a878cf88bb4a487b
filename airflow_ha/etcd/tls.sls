{#- etcd TLS (airflow_ha:etcd:tls:enabled): the CA and this node's certificate,
    public, 0644 in etcd:tls:dir. Each user that reads the node's private key
    gets its own 0600 copy from the state that needs it (etcd/config.sls,
    postgresql/config.sls, airflow/service.sls). Included only on a node with
    a certificate (an etcd member or client) when TLS is on. The PEMs come from
    pillar by path (contents_pillar): no key ever appears in the rendered SLS. -#}
{%- from "airflow_ha/map.jinja" import ah with context %}
{%- set tls = ah.etcd.tls %}

airflow_ha-etcd-tls-dir:
  file.directory:
    - name: {{ tls.dir }}
    - user: root
    - group: root
    - mode: "0755"
    - makedirs: true

airflow_ha-etcd-tls-ca:
  file.managed:
    - name: {{ tls.ca_file }}
    - contents_pillar: airflow_ha:etcd:tls:ca_cert
    - user: root
    - group: root
    - mode: "0644"
    - require:
      - file: airflow_ha-etcd-tls-dir

airflow_ha-etcd-tls-cert:
  file.managed:
    - name: {{ tls.cert_file }}
    - contents_pillar: airflow_ha:etcd:tls:certs:{{ ah.minion_id }}:cert
    - user: root
    - group: root
    - mode: "0644"
    - require:
      - file: airflow_ha-etcd-tls-dir
