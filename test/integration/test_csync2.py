"""csync2: every node carries the same key/config, and a DAG file written on
one node reaches every other node (through the watcher or an explicit push)."""

import time
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


# ---- airflow_ha.csync2 component checks (module, watcher, conflicts) ----


def _read(node_exec, name, path):
    res = node_exec(name, f"cat {path}")
    return res.stdout if res.rc == 0 else None


def test_exactly_one_listener_csync2_socket(node_exec, peers, ah, address):
    port = ah["csync2"]["port"]
    for name in peers:
        out = node_exec(name, f"ss -Hltnp 'sport = :{port}'").stdout
        lines = [x for x in out.splitlines() if x.strip()]
        assert len(lines) == 1, f"{name}: {out}"
        assert '"systemd"' in lines[0], f"{name}: not csync2.socket: {lines[0]}"  # not inetd/daemon
        assert f"{address(name)}:{port}" in lines[0]


def test_own_certificate_same_subject(node_exec, peers, ah):
    cs = ah["csync2"]
    subjects, prints = set(), set()
    for name in peers:
        assert node_exec(name, f"stat -c %a {cs['ssl_key']}").stdout.strip() == "600"
        subjects.add(node_exec(name, f"openssl x509 -in {cs['ssl_cert']} -noout -subject").stdout)
        prints.add(node_exec(name, f"openssl x509 -in {cs['ssl_cert']} -noout -fingerprint").stdout)
    assert len(subjects) == 1, subjects
    assert len(prints) == len(peers), "two nodes share a certificate"


def test_module_status_sync_in_sync(salt, peers):
    st = salt("node*", "csync2.status")
    for name in peers:
        assert st[name]["healthy"] is True, st[name]
        assert st[name]["config_valid"] is True
        assert all(p["reachable"] for p in st[name]["peers"].values()), st[name]["peers"]
    ret = salt(peers[0], "csync2.sync")[peers[0]]
    # a failed push raises: the return is then an error string, not this dict
    assert isinstance(ret, dict) and ret["errors"] == {} and ret["unreachable"] == [], ret
    ins = salt("node*", "csync2.in_sync")
    for name in peers:
        assert isinstance(ins[name], dict) and ins[name]["in_sync"] is True, ins[name]


def test_module_bad_arguments(salt, peers):
    out = salt(peers[0], "csync2.sync", "paths=['/etc/passwd']")[peers[0]]
    assert "outside the synced folders" in str(out)
    out = salt(peers[0], "csync2.sync", "peers=nodeX")[peers[0]]
    assert "not a csync2 peer" in str(out)
    out = salt(peers[0], "csync2.reset_db")[peers[0]]
    assert "confirm=True" in str(out)  # refused (SaltInvocationError), nothing moved


def test_watcher_same_second_rewrite_and_delete(node_exec, peers, ah, wait_for):
    """No explicit push: the watcher alone. The second write has the same size
    within the same second (csync2's own mtime+size check misses it)."""
    if len(peers) < 2:
        pytest.skip("needs 2 or more nodes (the single-node kitchen suite has one)")
    dags = f"{ah['airflow']['home']}/dags"
    path = f"{dags}/zz_csync2_watch_{uuid.uuid4().hex[:8]}.py"
    writer, others = peers[1], [p for p in peers if p != peers[1]]
    try:
        node_exec(writer, f"printf 'AAAA\\n' > {path}")
        assert wait_for(lambda: all(_read(node_exec, n, path) == "AAAA\n" for n in others), 15, 0.2)
        node_exec(writer, f"printf 'BBBB\\n' > {path}")
        assert wait_for(lambda: all(_read(node_exec, n, path) == "BBBB\n" for n in others), 15, 0.2)
    finally:
        node_exec(writer, f"rm -f {path}")
    assert wait_for(lambda: all(_read(node_exec, n, path) is None for n in others), 15, 0.2)


def test_concurrent_edit_resolved_nothing_lost(nodes, node_exec, salt, peers, ah, wait_for):
    """The same file edited on two nodes at once: one version wins everywhere
    (policy, or the tie-break for same-second edits), the other is kept in
    csync2's backup directory, and csync2.conflicts reported the conflict."""
    import threading

    dags = f"{ah['airflow']['home']}/dags"
    path = f"{dags}/zz_csync2_conflict_{uuid.uuid4().hex[:8]}.py"
    a, b = peers[0], peers[-1]
    texts = {a: f"from {a}\n", b: f"from {b} (longer)\n"}
    try:
        node_exec(a, f"printf 'base\\n' > {path}")
        assert wait_for(lambda: all(_read(node_exec, n, path) == "base\n" for n in peers), 15, 0.2)
        time.sleep(1.1)
        threads = [
            threading.Thread(target=node_exec, args=(n, f"printf '{texts[n].rstrip()}\\n' > {path}"))
            for n in (a, b)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

        def converged():
            vals = {_read(node_exec, n, path) for n in peers}
            return vals if len(vals) == 1 and vals <= set(texts.values()) else None

        final = wait_for(converged, 30, 0.5)
        assert final, {n: _read(node_exec, n, path) for n in peers}
        winner_text = final.pop()
        loser = a if winner_text == texts[b] else b
        backup = node_exec(loser, f"cat {ah['csync2']['backup_dir']}{path}* 2>/dev/null").stdout
        assert texts[loser] in backup, f"{loser} lost its version without a backup"
        conf = salt("node*", "csync2.conflicts", "since_minutes=10")
        events = [e for n in peers for e in conf[n]["recent"] if e.get("path") == path]
        assert events, conf
        assert all(conf[n]["unresolved"] == {} for n in peers), conf
    finally:
        node_exec(a, f"rm -f {path}")


def test_peer_away_does_not_hold_back_the_others_and_catches_up(node_exec, peers, ah, wait_for):
    """node C's listener is stopped (its node stays up): a push from A still
    reaches B at once, and C gets the file soon after its listener is back
    (the watcher probes an absent peer every few seconds)."""
    if len(peers) < 3:
        pytest.skip("needs 3 or more nodes (the single-node kitchen suite has one)")
    dags = f"{ah['airflow']['home']}/dags"
    path = f"{dags}/zz_csync2_away_{uuid.uuid4().hex[:8]}.py"
    a, b, c = peers[1], peers[0], peers[-1]
    node_exec(c, "systemctl stop csync2.socket")
    try:
        node_exec(a, f"printf 'x\\n' > {path}")
        assert wait_for(lambda: _read(node_exec, b, path) == "x\n", 15, 0.2)
        assert _read(node_exec, c, path) is None
    finally:
        node_exec(c, "systemctl start csync2.socket")
    try:
        assert wait_for(lambda: _read(node_exec, c, path) == "x\n", 30, 0.5), _trail(node_exec, peers, path)
    finally:
        node_exec(a, f"rm -f {path}")
    gone = wait_for(lambda: all(_read(node_exec, n, path) is None for n in peers), 15, 0.2)
    assert gone, f"deleted on {a}, still there 15 s later: {_trail(node_exec, peers, path)}"


def _trail(node_exec, peers, path):
    """Where PATH is, and what each node's watcher and csync2 daemon logged
    about the last minute (a failure of the check above seen once on trixie
    in CI printed nothing to go on)."""
    out = []
    for n in peers:
        here = "has it" if _read(node_exec, n, path) is not None else "has not"
        log = node_exec(n, "journalctl --no-pager -q -o short-precise --since -60s "
                           "-u airflow_ha-csync2-watcher -u 'csync2@*' | tail -25").stdout  # fmt: skip
        out.append(f"\n== {n}: {here}\n{log}")
    return "".join(out)
