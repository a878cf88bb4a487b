---
# Lab pillar: pillar.example's shape with the lab's addresses (default
# LAB_SUBNET 10.77.0.0/24, LAB_NODES=3), the lab's package proxies on the
# host's bridge address and FIXED LAB-ONLY secrets (never use them elsewhere).
# labctl's lab_generated.sls overrides nodes/proxy/vip for other settings.
airflow_ha:
  cluster_name: airflow-ha-lab
  single_node: false
  # node1 and node2 also run Prometheus (role monitor: monitoring below).
  nodes:
    node1:
      address: 10.77.0.11
      roles: [db, broker, scheduler, api, worker, triggerer, dag_processor, flower, monitor]
    node2:
      address: 10.77.0.12
      roles: [db, broker, scheduler, api, worker, triggerer, dag_processor, flower, monitor]
    node3:
      address: 10.77.0.13
      # every role, and the pgBackRest repository (airflow_ha:pgbackrest)
      roles: [db, broker, scheduler, api, worker, triggerer, dag_processor, flower, backup]
  network:
    prefix: 24
  timezone: UTC
  time_sync:
    daemon: systemd-timesyncd
    ntp_servers: []
  proxy:
    apt: http://10.77.0.1:3142
    pip:
      index_url: ''
      find_links: [http://10.77.0.1:3141/]
      no_index: true
      proxy: ''
      trusted_hosts: [10.77.0.1]
  vip:
    enabled: true
    address: 10.77.0.10
    interface: host0
    virtual_router_id: 51
  # Backups: repo1 on node3, its TLS server reusing the lab's etcd TLS
  # certificates (LAB_ETCD_TLS=1, the default; lab_generated.sls has them).
  pgbackrest:
    enabled: true
  # Prometheus metrics and alerts, on in the lab (README "Monitoring").
  monitoring:
    enabled: true
  airflow:
    version: 3.3.2
    worker_concurrency: 2
    admin:
      username: admin
      email: admin@lab.invalid
      firstname: Lab
      lastname: Admin
    config:
      core:
        load_examples: 'False'
  secrets:
    postgres_superuser_password: lab-e4503e1b3e86217dfb2f20b4
    postgres_replication_password: lab-9b346911dcc3efaaee5a4d33
    postgres_rewind_password: lab-ac800bc73c4758474f857abd
    patroni_api_password: lab-daa113fd3fd62bcf52c41ced
    airflow_db_password: lab-bff211ce08e643803bafcb51
    rabbitmq_password: lab-f8d4acd1621f4b8196931720
    rabbitmq_admin_password: lab-0c4fa2fa0fe1ac055575879e
    erlang_cookie: LAB543D4A8BBAA80B7A270F6255
    keepalived_password: lab2635
    csync2_psk: 8f9151e709a118ca52444ae8f6676110e4d7b5223186d1a840309e4e8364dfc2
    fernet_key: 4pBqq2kHB01G_m9eIilpU9Kmo7dGqvxgzI18gsqW2aI=
    api_secret_key: lab-e944e7f5dfb33bb11dca90ca
    jwt_secret: lab-99f1bc9dd8fd978047cf3e0c1028283b37b212353b6d1ff7b6418d53af41fc1d
    admin_password: lab-admin-aba5c8
    postgres_exporter_password: lab-7d2c94e1b8a05f36c1e9d4a2
    pgbackrest_cipher_pass: lab-3c9e71d0a4b85f26e1d7c09a3b4f6e82
