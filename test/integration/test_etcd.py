"""etcd: one cluster of every db node, all members started and healthy; with
airflow_ha:etcd:tls:enabled, https only, with client and peer cert auth, and
every client (Patroni, the dag-processor's etcdctl) on https too."""

import json

import pytest
import yaml


@pytest.fixture(scope="module")
def db(role_nodes, require_unit, ah):
    names = role_nodes("db")
    require_unit(ah["etcd"]["service"], names)
    return names


def endpoint(etcd_client, address, node):
    return etcd_client.url(address(node))


@pytest.fixture(scope="module")
def tls(etcd_client):
    if etcd_client.tls is None:
        pytest.skip("airflow_ha:etcd:tls:enabled is off: etcd speaks plain http")
    return etcd_client.tls


def test_etcd_active_and_enabled(nodes, db, ah):
    for name in db:
        svc = nodes[name].service(ah["etcd"]["service"])
        assert svc.is_running, f"etcd not running on {name}"
        assert svc.is_enabled, f"etcd not enabled on {name}"


def test_one_cluster_with_every_db_node(nodes, db, etcd_client, address):
    """Every node reports the same cluster id and the full member list (the
    trap: three separate 1-member clusters each report "healthy")."""
    cluster_ids, members = set(), None
    for name in db:
        out = nodes[name].check_output(
            f"{etcd_client.etcdctl} --endpoints={endpoint(etcd_client, address, name)} member list -w json"
        )
        data = json.loads(out)
        cluster_ids.add(data["header"]["cluster_id"])
        names = sorted(m.get("name", "") for m in data["members"])
        members = members or names
        assert names == members, f"{name} sees members {names}, others {members}"
    assert len(cluster_ids) == 1, f"nodes are in different etcd clusters: {cluster_ids}"
    assert len(members) == len(db), f"members {members} != db nodes {db}"
    assert all(members), f"a member has not started (empty name): {members}"


def test_every_endpoint_healthy(nodes, db, etcd_client, address):
    eps = ",".join(endpoint(etcd_client, address, n) for n in db)
    cmd = f"{etcd_client.etcdctl} --endpoints={eps} endpoint health -w json"
    data = json.loads(nodes[db[0]].check_output(cmd))
    unhealthy = [e for e in data if not e.get("health")]
    assert not unhealthy, f"unhealthy etcd endpoints: {unhealthy}"
    assert len(data) == len(db)


def test_one_raft_leader(nodes, db, etcd_client, address):
    eps = ",".join(endpoint(etcd_client, address, n) for n in db)
    cmd = f"{etcd_client.etcdctl} --endpoints={eps} endpoint status -w json"
    data = json.loads(nodes[db[0]].check_output(cmd))
    leaders = {e["Status"]["leader"] for e in data}
    assert len(leaders) == 1 and 0 not in leaders, f"leaders seen: {leaders}"


# --- db layer checks (airflow_ha.etcd) --------------------------------------------------


def test_member_lives_in_the_formula_data_dir(nodes, db, ah):
    """The package's default 1-member bootstrap never ran or was cleared: the
    member's data is in the formula's data_dir, /var/lib/etcd/default is gone."""
    data_dir = ah["etcd"]["data_dir"]
    for name in db:
        host = nodes[name]
        assert host.file(f"{data_dir}/member").is_directory, f"{data_dir}/member missing on {name}"
        assert host.file(data_dir).mode & 0o077 == 0, f"{data_dir} readable by others on {name}"
        if data_dir.rstrip("/") != "/var/lib/etcd/default":
            assert not host.file("/var/lib/etcd/default").exists, f"default bootstrap left on {name}"


def test_config_names_this_node_and_every_peer(nodes, db, ah, address, etcd_client):
    scheme = etcd_client.scheme
    peers = ",".join(f"{n}={scheme}://{address(n)}:{ah['etcd']['peer_port']}" for n in db)
    for name in db:
        conf = nodes[name].file(ah["etcd"]["config_file"]).content_string
        initial = nodes[name].file(ah["etcd"]["config_file"] + ".initial").content_string
        assert f'ETCD_NAME="{name}"' in conf
        assert f'ETCD_INITIAL_CLUSTER="{peers}"' in initial, f"{name}: initial cluster differs"
        assert etcd_client.url("127.0.0.1") in conf, f"{name}: no localhost client URL"
        assert ('ETCD_CLIENT_CERT_AUTH="true"' in conf) == (scheme == "https"), f"{name}: client cert auth"


def test_local_client_url_answers_health(node_exec, db, etcd_client):
    """Patroni and the wait state use the node's own member on 127.0.0.1."""
    for name in db:
        res = node_exec(name, f"{etcd_client.curl} {etcd_client.url('127.0.0.1')}/health")
        assert json.loads(res.stdout).get("health") == "true", f"{name}: {res.stdout}"


# --- TLS (airflow_ha:etcd:tls:enabled) -------------------------------------------------


def test_tls_files_owned_by_their_reader(nodes, db, role_nodes, ah, tls):
    """CA and certificate public (0644 root); each key a 0600 copy of its reader."""
    airflow3 = str(ah["airflow"]["version"]).startswith("3.")
    for name in sorted(set(db) | set(role_nodes("dag_processor") if airflow3 else [])):
        host = nodes[name]
        for path in (tls["ca"], tls["cert"]):
            f = host.file(path)
            assert f.is_file and f.user == "root" and f.mode == 0o644, f"{name}: {path}"
        keys = []
        if name in db:
            keys += [(tls["etcd_key"], "etcd"), (tls["patroni_key"], "postgres")]
        if airflow3 and name in role_nodes("dag_processor"):
            keys.append((tls["airflow_key"], ah["airflow"]["user"]))
        for path, user in keys:
            f = host.file(path)
            assert f.is_file and f.user == user and f.mode == 0o600, f"{name}: {path} ({f.user} {f.mode:o})"


def test_tls_refuses_plain_http_and_clients_without_certificate(node_exec, db, ah, tls):
    port = ah["etcd"]["client_port"]
    for name in db:
        plain = node_exec(name, f"curl -s -m 5 http://127.0.0.1:{port}/health")
        assert '"health":"true"' not in plain.stdout, f"{name}: etcd answers plain http"
        certless = node_exec(name, f"curl -s -m 5 --cacert {tls['ca']} https://127.0.0.1:{port}/health")
        assert certless.rc != 0 and '"health"' not in certless.stdout, f"{name}: no client certificate needed"


def test_tls_every_client_uses_https(nodes, db, role_nodes, ah, tls):
    """Patroni's etcd3 section and the dag-processor's etcdctl environment."""
    for name in db:
        conf = yaml.safe_load(nodes[name].file(ah["postgresql"]["patroni"]["config_file"]).content_string)
        etcd3 = conf["etcd3"]
        assert etcd3["protocol"] == "https", f"{name}: Patroni uses {etcd3['protocol']}"
        assert (etcd3["cacert"], etcd3["cert"], etcd3["key"]) == (tls["ca"], tls["cert"], tls["patroni_key"])
    if not str(ah["airflow"]["version"]).startswith("3."):
        return
    for name in role_nodes("dag_processor"):
        env = nodes[name].check_output("systemctl show -p Environment --value airflow-dag-processor")
        assert "ETCDCTL_ENDPOINTS=https://" in env, f"{name}: {env}"
        assert f"ETCDCTL_CACERT={tls['ca']}" in env and f"ETCDCTL_KEY={tls['airflow_key']}" in env, name
