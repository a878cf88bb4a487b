"""csync2: every node carries the same key/config, and a DAG file written on
one node reaches every other node (through the watcher or an explicit push)."""

import uuid

import pytest


@pytest.fixture(scope="module")
def peers(nodes, ah, require_unit):
    names = list(nodes)
    missing = [n for n in names if not nodes[n].exists("csync2")]
    if missing:
        pytest.skip(f"csync2 not installed on {', '.join(missing)} (not built yet)")
    return names


def test_key_and_config_same_everywhere(nodes, peers, ah):
    cs = ah["csync2"]
    sums = {}
    for name in peers:
        key = nodes[name].file(cs["key_file"])
        assert key.exists and key.mode & 0o077 == 0, f"{cs['key_file']} on {name}"
        sums[name] = nodes[name].file(cs["config_file"]).sha256sum
    assert len(set(sums.values())) == 1, f"csync2.cfg differs: {sums}"


def test_listener(nodes, peers, ah, address):
    port = ah["csync2"]["port"]
    for name in peers:
        sock = nodes[name].socket(f"tcp://0.0.0.0:{port}")
        sock2 = nodes[name].socket(f"tcp://{address(name)}:{port}")
        assert sock.is_listening or sock2.is_listening, f"nothing listens on {name}:{port}"


def test_in_sync(node_exec, peers):
    """`csync2 -T` exits 2 when nothing differs (0/1 mean differences/errors)."""
    for name in peers:
        res = node_exec(name, "csync2 -T")
        assert res.rc == 2, f"{name}: csync2 -T rc {res.rc}: {res.stdout} {res.stderr}"


def test_new_dag_file_spreads(nodes, node_exec, peers, ah, wait_for):
    dags = f"{ah['airflow']['home']}/dags"
    name = f"zz_csync2_probe_{uuid.uuid4().hex[:8]}.txt"
    path = f"{dags}/{name}"
    first, others = peers[0], peers[1:]
    node_exec(first, f"echo probe > {path} && csync2 -x >/dev/null 2>&1; true")
    try:
        seen = wait_for(lambda: all(nodes[n].file(path).exists for n in others), timeout=60)
        assert seen, f"{path} did not reach {others}"
    finally:
        node_exec(first, f"rm -f {path} && csync2 -x >/dev/null 2>&1; true")
    gone = wait_for(lambda: not any(nodes[n].file(path).exists for n in others), timeout=60)
    assert gone, f"deleting {path} did not propagate"
