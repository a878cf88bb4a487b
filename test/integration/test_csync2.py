"""
Lab checks for airflow_ha.csync2 (run by `labctl verify` / `make test-cluster`
after the formula is applied). Each check drives the real nodes through
test/lab/labctl; file checks use a scratch name under the dags folder and
clean up after themselves.
"""

import json
import pathlib
import subprocess
import time
import uuid

import pytest

LABCTL = str(pathlib.Path(__file__).resolve().parents[1] / "lab" / "labctl")
NODES = ["node1", "node2", "node3"]
DAGS = "/var/lib/airflow/dags"
PORT = 30865


def labctl(*args, check=True, timeout=300):
    p = subprocess.run([LABCTL, *args], capture_output=True, text=True, timeout=timeout, check=False)
    if check and p.returncode != 0:
        raise AssertionError(f"labctl {' '.join(args)} failed ({p.returncode}): {p.stdout}{p.stderr}")
    return p


def salt(tgt, fun, *args):
    p = labctl("salt", tgt, fun, *args, "--out=json", "--static", check=False)
    return json.loads(p.stdout)


def sh(node, script, check=True):
    return labctl("exec", node, "sh", "-c", script, check=check).stdout


def wait_for(pred, timeout=15.0, step=0.1):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return pred()


def read(node, path):
    return labctl("exec", node, "cat", path, check=False).stdout


@pytest.fixture(scope="module", autouse=True)
def lab_up():
    if labctl("status", check=False).returncode != 0:
        pytest.skip("lab is not up")


@pytest.fixture
def scratch():
    name = f"it_{uuid.uuid4().hex[:8]}.py"
    yield f"{DAGS}/{name}"
    sh("node1", f"rm -f {DAGS}/{name}", check=False)


@pytest.mark.parametrize("node", NODES)
def test_one_listener_on_the_node_address(node):
    out = sh(node, f"ss -Hltnp 'sport = :{PORT}'")
    lines = [x for x in out.splitlines() if x.strip()]
    assert len(lines) == 1, out
    assert "systemd" in lines[0], out  # csync2.socket, not inetd or a stray daemon
    addr = sh(node, f"getent hosts {node}").split()[0]
    assert f"{addr}:{PORT}" in lines[0]


@pytest.mark.parametrize("node", NODES)
def test_secrets_files_private(node):
    out = sh(node, "stat -c '%a %U %n' /etc/csync2.key /etc/csync2_ssl_key.pem")
    for line in out.splitlines():
        assert line.startswith("600 root"), line


def test_certs_same_subject_own_keys():
    subjects, fingerprints = set(), set()
    for node in NODES:
        subjects.add(sh(node, "openssl x509 -in /etc/csync2_ssl_cert.pem -noout -subject").strip())
        fingerprints.add(sh(node, "openssl x509 -in /etc/csync2_ssl_cert.pem -noout -fingerprint").strip())
    assert len(subjects) == 1 and len(fingerprints) == len(NODES)


def test_status_all_peers_reachable():
    ret = salt("node*", "csync2.status")
    for node in NODES:
        st = ret[node]
        assert st["result"] is True, st
        assert st["config_valid"] is True
        assert sorted(st["peers"]) == sorted(set(NODES) - {node})


def test_sync_structured_success_then_in_sync():
    ret = salt("node1", "csync2.sync")["node1"]
    assert ret["result"] is True, ret
    assert ret["errors"] == {} and ret["unreachable"] == []
    ins = salt("node*", "csync2.in_sync")
    for node in NODES:
        assert ins[node]["result"] is True and ins[node]["in_sync"] is True, ins[node]


def test_bad_arguments_are_clear_errors():
    p = labctl("salt", "node1", "csync2.sync", "paths=['/etc/passwd']", "--out=json", "--static", check=False)
    assert "outside the synced folders" in p.stdout
    p = labctl("salt", "node1", "csync2.sync", "peers=nodeX", "--out=json", "--static", check=False)
    assert "not a csync2 peer" in p.stdout
    assert salt("node1", "csync2.reset_db")["node1"]["result"] is False


def test_new_file_edit_in_same_second_and_delete_propagate(scratch):
    sh("node2", f"printf 'AAAA\\n' > {scratch}")
    assert wait_for(lambda: all(read(n, scratch) == "AAAA\n" for n in ("node1", "node3")), 10)
    # same size, same second: csync2's own mtime+size check would miss it
    sh("node2", f"printf 'AAAA\\n' > {scratch}.x && printf 'BBBB\\n' > {scratch} && rm {scratch}.x")
    assert wait_for(lambda: all(read(n, scratch) == "BBBB\n" for n in ("node1", "node3")), 10)
    sh("node2", f"rm {scratch}")
    assert wait_for(
        lambda: all(labctl("exec", n, "test", "-e", scratch, check=False).returncode == 1 for n in NODES), 10
    )


def test_concurrent_edit_resolved_by_policy_nothing_lost(scratch):
    sh("node1", f"printf 'base\\n' > {scratch}")
    assert wait_for(lambda: all(read(n, scratch) == "base\n" for n in NODES), 10)
    time.sleep(1.1)
    # both nodes edit the same file within a few milliseconds
    p1 = subprocess.Popen([LABCTL, "exec", "node1", "sh", "-c", f"printf 'from node1\\n' > {scratch}"])
    p3 = subprocess.Popen([LABCTL, "exec", "node3", "sh", "-c", f"printf 'from node3 longer\\n' > {scratch}"])
    p1.wait()
    p3.wait()

    def converged():
        vals = {read(n, scratch) for n in NODES}
        return len(vals) == 1 and vals.pop() in ("from node1\n", "from node3 longer\n")

    assert wait_for(converged, 30, 0.5), {n: read(n, scratch) for n in NODES}
    winner = read("node1", scratch)
    loser = "node3" if winner == "from node1\n" else "node1"
    lost_text = "from node3 longer\n" if loser == "node3" else "from node1\n"
    # the losing version is kept in csync2's backup directory on the loser
    backups = sh(loser, f"cat /var/lib/csync2/backup{scratch}* 2>/dev/null", check=False)
    assert lost_text in backups
    # and the conflict was reported
    recent = salt("node*", "csync2.conflicts", "since_minutes=5")
    events = [e for n in NODES for e in recent[n]["recent"] if e["path"] == scratch]
    assert events, recent
    for n in NODES:
        assert recent[n]["unresolved"] == {}, recent[n]
