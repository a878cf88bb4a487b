"""The db layer's config templates (etcd, Patroni, HAProxy, keepalived), rendered
by Salt's real Jinja renderer and the repo's map.jinja/_modules for a 3-node
and a 5-node pillar: what each daemon is told, per node."""

import copy
import json

import pytest
import salt.client
import salt.config
import salt.utils.yaml
from testlib import ROOT

EXAMPLE = salt.utils.yaml.safe_load((ROOT / "pillar.example").read_text())
TEMPLATES = {
    "etcd": "salt://airflow_ha/etcd/files/etcd.default.jinja",
    "etcd_initial": "salt://airflow_ha/etcd/files/etcd.initial.jinja",
    "patroni": "salt://airflow_ha/postgresql/files/patroni.yml.jinja",
    "haproxy": "salt://airflow_ha/haproxy/files/haproxy.cfg.jinja",
    "keepalived": "salt://airflow_ha/keepalived/files/keepalived.conf.jinja",
}
FIVE = {f"node{i}": {"address": f"10.77.0.{10 + i}"} for i in range(1, 6)}


def _pillar(variant):
    data = copy.deepcopy(EXAMPLE)
    ah = data["airflow_ha"]
    ah["vip"]["enabled"] = True
    if variant == "five":
        ah["nodes"] = copy.deepcopy(FIVE)
    elif variant == "airflow2":
        ah["airflow"]["version"] = "2.11.2"
    return data


@pytest.fixture(scope="module")
def render(tmp_path_factory):
    """render(variant, node, name) -> rendered text. One Salt Caller; the node's
    id and the pillar are swapped in place between renders (the loaded
    modules hold references to the same opts/pillar dicts)."""
    tmp = tmp_path_factory.mktemp("db-templates")
    pillar_dir = tmp / "pillar"
    pillar_dir.mkdir()
    (pillar_dir / "top.sls").write_text("base:\n  '*':\n    - airflow_ha\n")
    (pillar_dir / "airflow_ha.sls").write_text(json.dumps(_pillar("three")))
    conf = tmp / "minion"
    conf.write_text(
        json.dumps(
            {
                "id": "node1",
                "file_client": "local",
                "root_dir": str(tmp / "root"),
                "file_roots": {"base": [str(ROOT)]},
                "pillar_roots": {"base": [str(pillar_dir)]},
                "module_dirs": [str(ROOT / "_modules")],
                "states_dirs": [str(ROOT / "_states")],
                "utils_dirs": [str(ROOT / "_utils")],
                "grains": {"os": "Debian", "os_family": "Debian", "osfinger": "Debian-12", "virtual": "kvm"},
                "log_level": "quiet",
                "log_level_logfile": "quiet",
                "log_file": str(tmp / "log"),
            }
        )
    )
    caller = salt.client.Caller(mopts=salt.config.minion_config(str(conf)))
    opts = caller.sminion.opts

    def _render(variant, node, name):
        opts["id"] = node
        opts["grains"]["id"] = node
        opts["pillar"].clear()
        opts["pillar"].update(_pillar(variant))
        dest = tmp / f"{variant}-{node}-{name}"
        out = caller.cmd("cp.get_template", TEMPLATES[name], str(dest))
        assert out == str(dest), out
        return dest.read_text()

    return _render


def env(text):
    return dict(line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))


def test_etcd_member_and_initial_cluster(render):
    e = env(render("three", "node2", "etcd"))
    assert e["ETCD_NAME"] == '"node2"'
    assert e["ETCD_LISTEN_PEER_URLS"] == '"http://10.77.0.12:2380"'
    assert e["ETCD_LISTEN_CLIENT_URLS"] == '"http://10.77.0.12:2379,http://127.0.0.1:2379"'
    assert e["ETCD_ENABLE_V2"] == '"false"'
    # the member list lives apart: changing it must not restart a running member
    assert not [k for k in e if k.startswith("ETCD_INITIAL_CLUSTER")]
    e = env(render("three", "node2", "etcd_initial"))
    assert e["ETCD_INITIAL_CLUSTER"] == (
        '"node1=http://10.77.0.11:2380,node2=http://10.77.0.12:2380,node3=http://10.77.0.13:2380"'
    )
    assert e["ETCD_INITIAL_CLUSTER_STATE"] == '"new"'


def test_etcd_pre_vote(render):
    assert env(render("three", "node1", "etcd"))["ETCD_PRE_VOTE"] == '"true"'


def test_etcd_five_members(render):
    e = env(render("five", "node5", "etcd_initial"))
    assert e["ETCD_INITIAL_CLUSTER"].count("=http://") == 5
    assert "node5=http://10.77.0.15:2380" in e["ETCD_INITIAL_CLUSTER"]


def test_patroni_config(render):
    conf = salt.utils.yaml.safe_load(render("three", "node3", "patroni"))
    secrets = EXAMPLE["airflow_ha"]["secrets"]
    assert conf["scope"] == EXAMPLE["airflow_ha"]["cluster_name"]
    assert conf["name"] == "node3"
    assert conf["restapi"]["listen"] == conf["restapi"]["connect_address"] == "10.77.0.13:8008"
    assert conf["restapi"]["authentication"]["password"] == secrets["patroni_api_password"]
    # its own etcd member only, over loopback: no switching to a stale member
    assert conf["etcd3"]["hosts"] == ["127.0.0.1:2379"]
    assert conf["etcd3"]["use_proxies"] is True
    auth = conf["postgresql"]["authentication"]
    assert auth["superuser"]["password"] == secrets["postgres_superuser_password"]
    assert auth["replication"]["password"] == secrets["postgres_replication_password"]
    assert auth["rewind"]["password"] == secrets["postgres_rewind_password"]
    dcs = conf["bootstrap"]["dcs"]
    p = EXAMPLE["airflow_ha"]["postgresql"]["patroni"]
    assert (dcs["ttl"], dcs["loop_wait"], dcs["retry_timeout"]) == (
        p["ttl"],
        p["loop_wait"],
        p["retry_timeout"],
    )
    assert dcs["postgresql"]["use_pg_rewind"] is True
    assert dcs["synchronous_mode"] is True
    assert dcs["postgresql"]["use_slots"] is True  # bootstrap only; the PATCH leaves it alone
    assert dcs["postgresql"]["parameters"]["max_connections"] == 300
    assert conf["postgresql"]["listen"] == "10.77.0.13,127.0.0.1:5432"


def test_patroni_pg_hba_only_subnet_and_scram(render):
    hba = salt.utils.yaml.safe_load(render("three", "node1", "patroni"))["postgresql"]["pg_hba"]
    assert hba[0] == "local all all peer"
    for line in hba[1:]:
        method, source = line.split()[-1], line.split()[-2]
        assert method == "scram-sha-256", line
        assert source in ("127.0.0.1/32", "10.77.0.0/24"), line
    assert "host replication replicator 10.77.0.0/24 scram-sha-256" in hba
    assert "host airflow airflow 10.77.0.0/24 scram-sha-256" in hba
    assert "host all rewind 10.77.0.0/24 scram-sha-256" in hba


def test_haproxy_routes(render):
    cfg = render("three", "node1", "haproxy")
    primary = cfg.split("listen postgres_primary")[1].split("listen ")[0]
    replicas = cfg.split("listen postgres_replicas")[1].split("listen ")[0]
    assert "option httpchk OPTIONS /primary" in primary
    assert "option httpchk OPTIONS /replica" in replicas
    for block in (primary, replicas):
        assert "on-marked-down shutdown-sessions" in block
        assert "inter 1000ms fastinter 500ms downinter 500ms fall 2 rise 1" in block
        assert block.count("check port 8008") == 3
    assert "bind 127.0.0.1:5000" in primary and "bind 10.77.0.11:5000" in primary
    assert "bind 10.77.0.10:5000 transparent" in primary  # the VIP
    assert "bind 10.77.0.11:7000" in cfg and "bind 0.0.0.0" not in cfg
    assert "option httpchk GET /api/v2/monitor/health" in cfg


def test_haproxy_airflow2_health_path(render):
    assert "option httpchk GET /health\n" in render("airflow2", "node1", "haproxy")


def test_haproxy_five_nodes(render):
    cfg = render("five", "node4", "haproxy")
    assert cfg.split("listen postgres_primary")[1].split("listen ")[0].count("check port 8008") == 5
    assert "bind 10.77.0.14:5000" in cfg


def test_keepalived_priorities_and_peers(render):
    prios, texts = {}, {}
    for i in range(1, 6):
        node = f"node{i}"
        texts[node] = render("five", node, "keepalived")
        prios[node] = int(texts[node].split("priority ")[1].split()[0])
        peers = texts[node].split("unicast_peer {")[1].split("}")[0].split()
        assert sorted(peers) == sorted(a["address"] for n, a in FIVE.items() if n != node)
        assert f"unicast_src_ip {FIVE[node]['address']}" in texts[node]
        assert "nopreempt" in texts[node] and "state BACKUP" in texts[node]
        assert f"auth_pass {EXAMPLE['airflow_ha']['secrets']['keepalived_password']}" in texts[node]
    assert len(set(prios.values())) == 5, prios
    assert all(0 < p < 255 for p in prios.values())
