{%- from "airflow_ha/map.jinja" import ah with context %}

{#- csync2, RabbitMQ and Patroni address peers by name: every node resolves
    every node, whatever DNS says. The block goes first so it wins over
    Debian's "127.0.1.1 <hostname>" line. #}
airflow_ha-common-hosts:
  file.blockreplace:
    - name: /etc/hosts
    - marker_start: "# BEGIN airflow_ha nodes (managed by Salt)"
    - marker_end: "# END airflow_ha nodes"
    - content: |
{%- for node_id, node in ah.nodes.items() %}
        {{ node.address }} {{ node_id }}
{%- endfor %}
    - prepend_if_not_found: true

airflow_ha-common-apt-proxy:
{%- if ah.proxy.apt %}
  file.managed:
    - name: /etc/apt/apt.conf.d/80airflow_ha-proxy
    - mode: "0644"
    - contents: |
        // Managed by Salt (airflow_ha:proxy:apt)
        Acquire::http::Proxy "{{ ah.proxy.apt }}";
{%- else %}
  file.absent:
    - name: /etc/apt/apt.conf.d/80airflow_ha-proxy
{%- endif %}

airflow_ha-common-pip-conf:
{%- set pip = ah.proxy.pip %}
{%- if pip.index_url or pip.find_links or pip.proxy or pip.trusted_hosts %}
  file.managed:
    - name: /etc/pip.conf
    - mode: "0644"
    - contents: |
        # Managed by Salt (airflow_ha:proxy:pip)
        [global]
{%- if pip.index_url %}
        index-url = {{ pip.index_url }}
{%- endif %}
{%- if pip.no_index %}
        no-index = true
{%- endif %}
{%- if pip.find_links %}
        find-links = {{ pip.find_links | join(" ") }}
{%- endif %}
{%- if pip.proxy %}
        proxy = {{ pip.proxy }}
{%- endif %}
{%- if pip.trusted_hosts %}
        trusted-host = {{ pip.trusted_hosts | join(" ") }}
{%- endif %}
{%- else %}
  {#- only remove what this formula wrote, never a pip.conf of the site's own #}
  file.absent:
    - name: /etc/pip.conf
    - onlyif: grep -qs "Managed by Salt (airflow_ha" /etc/pip.conf
{%- endif %}

airflow_ha-common-timezone:
  file.symlink:
    - name: /etc/localtime
    - target: /usr/share/zoneinfo/{{ ah.timezone }}
    - force: true
    - require:
      - pkg: airflow_ha-common-packages

airflow_ha-common-timezone-name:
  file.managed:
    - name: /etc/timezone
    - mode: "0644"
    - contents: {{ ah.timezone }}
