{#- Files RabbitMQ reads at start, laid down before the package (see
    init.sls). The rabbitmq user and group are created the way Debian's
    postinst would (it keeps existing ones), so the cookie can be owned by
    rabbitmq before the package exists. -#}
{%- from "airflow_ha/map.jinja" import ah with context %}
{%- set rmq = ah.rabbitmq %}

airflow_ha-rabbitmq-group:
  group.present:
    - name: rabbitmq
    - system: true

airflow_ha-rabbitmq-user:
  user.present:
    - name: rabbitmq
    - system: true
    - gid: rabbitmq
    - home: {{ rmq.home }}
    - createhome: false
    - shell: /usr/sbin/nologin
    - require:
      - group: airflow_ha-rabbitmq-group

airflow_ha-rabbitmq-dirs:
  file.directory:
    - names:
      - {{ rmq.conf_dir }}
      - {{ rmq.home }}
    - user: rabbitmq
    - group: rabbitmq
    - mode: "0755"
    - require:
      - user: airflow_ha-rabbitmq-user

{#- The cookie comes from the pillar (never in the rendered SLS). Debian's
    postinst keeps an existing cookie unless it looks Erlang-generated
    (exactly 20 upper-case letters). #}
airflow_ha-rabbitmq-cookie:
  file.managed:
    - name: {{ rmq.home }}/.erlang.cookie
    - contents_pillar: airflow_ha:secrets:erlang_cookie
    - contents_newline: false
    - show_changes: false
    - user: rabbitmq
    - group: rabbitmq
    - mode: "0400"
    - require:
      - file: airflow_ha-rabbitmq-dirs

airflow_ha-rabbitmq-advanced:
  file.managed:
    - name: {{ rmq.conf_dir }}/advanced.config
    - source: salt://airflow_ha/rabbitmq/files/advanced.config.jinja
    - template: jinja
    - user: rabbitmq
    - group: rabbitmq
    - mode: "0644"
    - require:
      - file: airflow_ha-rabbitmq-dirs

airflow_ha-rabbitmq-config:
  file.managed:
    - name: {{ rmq.conf_dir }}/rabbitmq.conf
    - source: salt://airflow_ha/rabbitmq/files/rabbitmq.conf.jinja
    - template: jinja
    - user: rabbitmq
    - group: rabbitmq
    - mode: "0644"
    - require:
      - file: airflow_ha-rabbitmq-dirs

airflow_ha-rabbitmq-env:
  file.managed:
    - name: {{ rmq.conf_dir }}/rabbitmq-env.conf
    - source: salt://airflow_ha/rabbitmq/files/rabbitmq-env.conf.jinja
    - template: jinja
    - user: rabbitmq
    - group: rabbitmq
    - mode: "0644"
    - require:
      - file: airflow_ha-rabbitmq-dirs

airflow_ha-rabbitmq-plugins:
  file.managed:
    - name: {{ rmq.conf_dir }}/enabled_plugins
    - contents: "{{ "[rabbitmq_management,rabbitmq_prometheus]." if ah.monitoring.enabled else "[rabbitmq_management]." }}"
    - user: rabbitmq
    - group: rabbitmq
    - mode: "0644"
    - require:
      - file: airflow_ha-rabbitmq-dirs

{#- epmd is socket-activated on Debian (erlang-base's epmd.socket listens on
    every address): bind it to this node's address and loopback. #}
airflow_ha-rabbitmq-epmd-socket-bind:
  file.managed:
    - name: /etc/systemd/system/{{ rmq.epmd_socket }}.d/airflow_ha.conf
    - makedirs: true
    - mode: "0644"
    - contents: |
        # Managed by Salt (airflow_ha.rabbitmq)
        [Socket]
        ListenStream=
        ListenStream=127.0.0.1:{{ rmq.epmd_port }}
        ListenStream={{ ah.address }}:{{ rmq.epmd_port }}
        FreeBind=true

airflow_ha-rabbitmq-systemd-reload:
  module.run:
    - service.systemctl_reload: []
    - onchanges:
      - file: airflow_ha-rabbitmq-epmd-socket-bind
