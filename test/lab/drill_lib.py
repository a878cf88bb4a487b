"""Shared pieces of the failure drills (test/lab/drills.d/*).

A drill runs on the host against a converged lab. It reaches every node
through its PID namespace (nspawn_lab's nsenter), never over the network, so it
keeps seeing a node that `labctl partition` cut off the bridge. The lab's
node list comes from LAB_STATE/lab.json (LAB_ID/LAB_SUBNET change the
addresses), the lab's secrets from test/lab/pillar and reach the nodes on
stdin, never in argv.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

LAB = Path(__file__).resolve().parent
if str(LAB) not in sys.path:
    sys.path.insert(0, str(LAB))
import nspawn_lab as lab  # noqa: E402 - test/lab/nspawn_lab, found through LAB
from nspawn_lab.salt import answering  # noqa: E402

PILLAR = yaml.safe_load((LAB / "pillar" / "airflow_ha.sls").read_text())["airflow_ha"]
SECRETS = PILLAR["secrets"]
PATRONI_CONF = "/etc/patroni/config.yml"
AIRFLOW_HOME = PILLAR.get("airflow", {}).get("home", "/var/lib/airflow")


def log(msg: str) -> None:
    print(f"[drill {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def figure(name: str, value, unit: str = "") -> None:
    print(f"{name}: {value} {unit}".rstrip(), flush=True)


def nodes() -> list[str]:
    return [n["name"] for n in lab.config()["nodes"]]


def roles_of(node: str) -> list[str]:
    """NODE's roles: test/lab/pillar's, or what `labctl add` gave it."""
    static = (PILLAR.get("nodes") or {}).get(node) or {}
    added = next((n.get("roles") for n in lab.config()["nodes"] if n["name"] == node), None)
    return list(static.get("roles") or added or [])


def run_in(node: str, *cmd, input: str | None = None, timeout: float = 30) -> subprocess.CompletedProcess:
    """Run CMD inside NODE; never raises (rc 255 when the node is not running)."""
    try:
        return lab.nsenter(node, *cmd, input=input, capture_output=True, text=True, timeout=timeout)
    except (lab.LabError, subprocess.TimeoutExpired) as exc:
        return subprocess.CompletedProcess(cmd, 255, "", str(exc))


def spawn_in(node: str, script: str, *args, stdin_line: str = "") -> subprocess.Popen:
    """Start `python3 -c SCRIPT ARGS` inside NODE; stdin gets one line (a secret) and closes."""
    pid = lab.node_pid1(node)
    if pid is None:
        raise lab.LabError(f"{node} is not running")
    cmd = ["nsenter", "-t", str(pid), "-a", "--", "python3", "-c", script, *map(str, args)]
    proc = subprocess.Popen(
        cmd,
        env=lab.node_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    proc.stdin.write(stdin_line + "\n")
    proc.stdin.close()
    proc.stdin = None  # communicate() must not flush it
    return proc


def json_lines(proc: subprocess.Popen, timeout: float) -> list[dict]:
    out, _err = proc.communicate(timeout=timeout)
    rows = []
    for line in out.splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            pass
    return rows


def psql(node: str, sql: str, db: str = "postgres", timeout: float = 15) -> str | None:
    """SQL as the postgres superuser over the node's local socket; None on error."""
    res = run_in(
        node, "runuser", "-u", "postgres", "--", "psql", "-XAtq", "-d", db, "-c", sql, timeout=timeout
    )
    return res.stdout.strip() if res.returncode == 0 else None


def patroni_members(node: str) -> list[dict]:
    res = run_in(node, "patronictl", "-c", PATRONI_CONF, "list", "-f", "json", timeout=20)
    try:
        return json.loads(res.stdout) if res.returncode == 0 else []
    except json.JSONDecodeError:
        return []


def set_synchronous_mode(node: str, value: str) -> bool:
    """Patroni's dynamic synchronous_mode, set through patronictl on NODE (the
    formula's next apply sets it back to the pillar's value)."""
    res = run_in(node, "patronictl", "-c", PATRONI_CONF, "edit-config", "--force", "-s",
                 f"synchronous_mode={value}", timeout=30)  # fmt: skip
    return res.returncode == 0


def leader(candidates: list[str] | None = None) -> str | None:
    """The running Patroni leader as the given nodes' patronictl sees it."""
    for node in candidates or nodes():
        for m in patroni_members(node):
            if m.get("Role") == "Leader" and m.get("State") == "running":
                return m["Member"]
    return None


def db_whole(names: list[str]) -> str | None:
    """None when the database cluster is whole: one running leader, every other
    node's WAL receiver streaming on the leader's timeline, the leader seeing
    them all streaming with replay lag under 16 MiB. Else what is missing.
    Patroni's own 'running' for a replica is not enough (a replica left on a
    diverged timeline still shows running)."""
    lead = leader(names)
    if not lead:
        return "no running leader"
    tl = next((str(m["TL"]) for m in patroni_members(lead) if m["Member"] == lead and m.get("TL")), None)
    tl = tl or psql(lead, "select timeline_id from pg_control_checkpoint()")
    for node in names:
        if node == lead:
            continue
        row = psql(node, "select status || ',' || received_tli from pg_stat_wal_receiver")
        if row != f"streaming,{tl}":
            return f"{node}: wal receiver {row or 'none'} (leader {lead} on timeline {tl})"
    sql = (
        "select count(*) || ',' || coalesce(max(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)), 0)"
        " from pg_stat_replication where state = 'streaming'"
    )
    row = psql(lead, sql)
    if not row:
        return f"{lead}: pg_stat_replication unreadable"
    count, lag = row.split(",")
    if int(count) != len(names) - 1 or float(lag) > 16 * 2**20:
        return f"{lead}: {count} streaming replicas, max replay lag {float(lag):.0f} B"
    return None


# the drills' own samplers refused while a server starts or stops, and the quiet HA loop
NOISE = re.compile(
    r"not yet accepting connections|database system is (starting up|shutting down)|INFO: no action\. "
)


def db_diagnosis(names: list[str], lines: int = 40) -> str:
    """What to read when db_whole keeps complaining: patronictl's view and,
    for each node, its WAL receiver and the tail of its Patroni journal."""
    out = [f"patronictl list: {patroni_members(names[0]) or patroni_members(names[-1])}"]
    for node in names:
        receiver = psql(node, "select status || ' tl ' || received_tli from pg_stat_wal_receiver")
        out.append(f"--- {node}: wal receiver {receiver or 'none'}; journal of patroni:")
        res = run_in(node, "journalctl", "-u", "patroni", "-n", "2000", "--no-pager", "-o", "short-precise")
        kept = [line for line in res.stdout.splitlines() if not NOISE.search(line)]
        out.append("\n".join(kept[-lines:])[-6000:])
    return "\n".join(out)


def broker_whole(names: list[str]) -> str | None:
    """None when every node's RabbitMQ runs every node and lists no partition."""
    for node in names:
        res = run_in(node, "rabbitmqctl", "-q", "cluster_status", "--formatter", "json", timeout=30)
        try:
            status = json.loads(res.stdout)
        except json.JSONDecodeError:
            return f"{node}: rabbitmqctl cluster_status failed (rc {res.returncode})"
        running = status.get("running_nodes", [])
        parts = status.get("partitions") or {}
        if len(running) != len(names) or parts:
            return f"{node}: running {len(running)}/{len(names)}, partitions {parts}"
    return None


def salt_whole(names: list[str]) -> str | None:
    """Every node's Salt minion answers: the next drill or apply reaches it.
    (A minion whose master connection died silently in a partition got no job
    for ~16 min with Salt's TCP keepalive defaults; the lab's minions now
    probe every 5 s, see nspawn_lab/nodes.py.)"""
    answered = answering(names, timeout=8)
    missing = sorted(set(names) - answered)
    return f"Salt minion(s) {', '.join(missing)} do not answer test.ping" if missing else None


def wait_whole(
    names: list[str], timeout: float, checks=(db_whole, broker_whole, salt_whole)
) -> tuple[float | None, str]:
    """Seconds until every check passes (None on time-out) and the last complaint."""
    start = time.monotonic()
    why = ""
    while time.monotonic() - start < timeout:
        why = next((w for w in (c(names) for c in checks) if w), "")
        if not why:
            return time.monotonic() - start, ""
        time.sleep(2)
    return None, f"{why}; {failed_units(names)}"


def failed_units(names: list[str]) -> str:
    """Each node's failed systemd units (`systemctl --failed`), for a message."""
    out = []
    for name in names:
        res = labctl("exec", name, "systemctl", "--failed", "--no-legend", "--plain", timeout=60)
        units = [line.split()[0] for line in res.stdout.splitlines() if line.strip()]
        out.append(f"{name}: {', '.join(units) or 'none'}")
    return "failed units: " + "; ".join(out)


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else float("nan")


def wait_for(check, timeout: float, interval: float = 2.0):
    """CHECK()'s first truthy answer within TIMEOUT seconds, else None."""
    end = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() >= end:
            return value or None
        time.sleep(interval)


def airflow_healthy(node: str) -> bool:
    """Airflow's API on NODE answers and reports the metadatabase and the scheduler healthy."""
    address = next(n["address"] for n in lab.config()["nodes"] if n["name"] == node)
    res = run_in(node, "curl", "-s", "-m", "5", f"http://{address}:8080/api/v2/monitor/health", timeout=10)
    try:
        health = json.loads(res.stdout)
    except json.JSONDecodeError:
        return False
    return all((health.get(k) or {}).get("status") == "healthy" for k in ("metadatabase", "scheduler"))


# --- Airflow: a drill's DAG, its runs, read from the metadatabase ----------------

_LEADER = [None]  # the last Patroni leader seen: asked again only when it fails


def airflow_rows(sql: str) -> list[list[str]]:
    """SQL on the airflow database of the Patroni leader, as rows of fields."""
    out = psql(_LEADER[0], sql, db="airflow") if _LEADER[0] else None
    if out is None:
        _LEADER[0] = leader()
        out = psql(_LEADER[0], sql, db="airflow") if _LEADER[0] else None
    return [line.split("|") for line in (out or "").splitlines() if line]


def labsalt(node: str, *args) -> subprocess.CompletedProcess:
    return labctl("salt", node, *args)


def deploy_dag(node: str, dag_id: str, text: str, timeout: float = 180) -> str | None:
    """Write the DAG file on NODE; None once csync2 has it on every node and
    Airflow parsed it, else what is missing. A node without the file fails the
    tasks it gets (the worker parses the file itself)."""
    path = f"{AIRFLOW_HOME}/dags/{dag_id}.py"
    run_in(node, "runuser", "-u", "airflow", "--", "tee", path, input=text)
    want = hashlib.md5(text.encode()).hexdigest()

    def missing() -> list[str]:
        return [n for n in nodes() if want not in run_in(n, "md5sum", path).stdout]

    if wait_for(lambda: not missing(), timeout, 1) is None:
        return f"{path} not on {', '.join(missing())} {timeout:.0f} s after it was written on {node}"
    if not wait_for(lambda: airflow_rows(f"select 1 from dag where dag_id = '{dag_id}'"), timeout, 3):
        return f"{dag_id} was not parsed within {timeout:.0f} s"
    return None


def trigger_dag(node: str, dag_id: str, run_id: str) -> None:
    """Trigger RUN_ID through Salt on NODE; raises unless the run is in the
    database within 30 s (a job the minion never got returns no error)."""
    res = labsalt(node, "airflow.dag_trigger", dag_id, f"run_id={run_id}")
    if res.returncode:
        raise RuntimeError(f"dag_trigger on {node} failed: {res.stdout[-300:]} {res.stderr[-300:]}")
    if not wait_for(lambda: dag_run_state(dag_id, run_id)[0], 30, 1):
        raise RuntimeError(f"dag_trigger on {node}: no run {run_id} 30 s later: {res.stdout[-300:]}")


def dag_run_state(dag_id: str, run_id: str) -> tuple[str, float]:
    """The run's state and end (epoch s, 0 while it runs)."""
    rows = airflow_rows(
        f"select state, coalesce(extract(epoch from end_date), 0) from dag_run "
        f"where dag_id = '{dag_id}' and run_id = '{run_id}'"
    )
    return (rows[0][0], float(rows[0][1])) if rows else ("", 0.0)


# --- the lab's apply, and membership checks after a replacement or a scale change ---

DAGS = f"{AIRFLOW_HOME}/dags"


# Airflow units systemd may start again once after a database failover:
# the dag-processor's lock wrapper exits on purpose when its etcd session is
# lost (fencing: no second processor); Airflow 3.3's triggerer exits when a
# query fails mid-transaction (its DB retry reuses the aborted transaction:
# "InFailedSqlTransaction" in Trigger.clean_unused); the scheduler's loop
# lets a database error end the process by design (it restarts on a fresh
# session instead of looping on a broken one), which happens when one of
# its queries is in flight on the server connection that died. The API
# server, worker and Flower must ride through.
MAY_RESTART_ON_DB_ERROR = frozenset(
    {"airflow-dag-processor.service", "airflow-triggerer.service", "airflow-scheduler.service"}
)


def unit_active(node: str, unit: str) -> bool:
    return run_in(node, "systemctl", "is-active", "-q", unit).returncode == 0


def restarts(node: str) -> dict:
    """{unit: NRestarts} of the node's Airflow units (systemd's count of
    automatic restarts: a component that died on a database error)."""
    res = run_in(node, "systemctl", "show", "-p", "Id,NRestarts", "airflow-*", timeout=20)
    out = {}
    for block in res.stdout.split("\n\n"):  # one block per unit, properties in systemd's order
        props = dict(line.partition("=")[::2] for line in block.splitlines() if "=" in line)
        if props.get("Id"):
            out[props["Id"]] = int(props.get("NRestarts") or 0)
    return out


def run_suite_file(name: str, flag: str) -> int:
    """Run test/integration/NAME with the env FLAG=1 that lets it out of its
    skip (a suite test that lives in make drills); its exit code."""
    root = LAB.parents[1]
    env = dict(os.environ, **{flag: "1"})
    cmd = [str(root / ".venv" / "bin" / "pytest"), "-q", "-s", "-rs", "-p", "no:cacheprovider"]
    return subprocess.run([*cmd, str(root / "test" / "integration" / name)], env=env, check=False).returncode


def run_drill(name: str, *args: str, timeout: float) -> tuple[subprocess.CompletedProcess, dict]:
    """drills.d/NAME ARGS, and its figures ({name: 'value unit'}): for the suite."""
    proc = subprocess.run(
        [LAB / "drills.d" / name, *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    return proc, dict(line.split(": ", 1) for line in proc.stdout.splitlines() if ": " in line)


def labctl(*args, timeout=3600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [LAB / "labctl", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def apply() -> tuple[float, dict, str]:
    """Seconds, {node: (changed, failed)}, the output's tail."""
    start = time.monotonic()
    proc = labctl("apply")
    took = time.monotonic() - start
    counts = {
        m.group(1): (int(m.group(2)), int(m.group(3)))
        for m in re.finditer(r"^\s+(\S+): (\d+) changed, (\d+) failed", proc.stdout, re.M)
    }
    return took, counts, (proc.stdout + proc.stderr)[-3000:]


def apply_ok(prog: str, label: str) -> tuple[float, int] | None:
    """The lab's apply: (seconds, states changed on all nodes), or None (said
    on stderr, with the output's tail) when a state failed or nothing answered."""
    took, counts, tail = apply()
    failed = {n: c for n, c in counts.items() if c[1]}
    if failed or not counts:
        print(f"{prog}: {label}: the apply failed: {failed or 'no result'}\n{tail}", file=sys.stderr)
        return None
    return took, sum(c[0] for c in counts.values())


TLS_DIR = "/etc/etcd/airflow-ha-tls"


def etcdctl(node: str, *args, timeout: float = 30) -> subprocess.CompletedProcess:
    """etcdctl on NODE against its local member, with the lab's etcd TLS when it is on."""
    tls = run_in(node, "test", "-f", f"{TLS_DIR}/ca.crt").returncode == 0
    flags = ["--endpoints", f"{'https' if tls else 'http'}://127.0.0.1:2379"]
    if tls:
        flags += [f"--cacert={TLS_DIR}/ca.crt", f"--cert={TLS_DIR}/node.crt", f"--key={TLS_DIR}/etcd.key"]
    return run_in(node, "etcdctl", *flags, *args, timeout=timeout)


def etcd_whole(names: list[str]) -> str | None:
    res = etcdctl(names[0], "member", "list", "-w", "json", timeout=20)
    try:
        members = json.loads(res.stdout)["members"]
    except (json.JSONDecodeError, KeyError):
        return f"etcdctl member list on {names[0]} failed: {res.stderr.strip()[:200]}"
    started = sorted(m.get("name", "") for m in members)
    if started != sorted(names):
        return f"etcd members {started}, want {sorted(names)}"
    res = etcdctl(names[0], "endpoint", "health", "--cluster", timeout=30)
    if res.returncode != 0:
        return f"etcd endpoint health --cluster: {(res.stdout + res.stderr).strip()[:300]}"
    return None


def etcd_leader_and_lease(node: str) -> tuple[str | None, int | None]:
    """The etcd raft leader's member name and the seconds left on the lease of
    Patroni's leader key, read through NODE (None for what could not be read).
    When the raft leader dies, the new one restarts every lease at its full TTL
    (etcd 3.4 keeps no remaining TTL), so a DB failover then waits a whole ttl."""
    leader, left = None, None
    status = etcdctl(node, "endpoint", "status", "--cluster", "-w", "json", timeout=10)
    members = etcdctl(node, "member", "list", "-w", "json", timeout=10)
    try:
        lead_id = json.loads(status.stdout)[0]["Status"]["leader"]
        names = {m["ID"]: m.get("name") for m in json.loads(members.stdout)["members"]}
        leader = names.get(lead_id)
    except (json.JSONDecodeError, KeyError, IndexError, TypeError):
        pass
    keys = etcdctl(node, "get", "--prefix", "--keys-only", "/service/", timeout=10).stdout.split()
    key = next((k for k in keys if k.endswith("/leader")), None)
    if key is None:
        return leader, left
    try:
        lease = json.loads(etcdctl(node, "get", key, "-w", "json", timeout=10).stdout)["kvs"][0]["lease"]
        ttl = json.loads(etcdctl(node, "lease", "timetolive", format(lease, "x"), "-w", "json").stdout)
        left = int(ttl["ttl"])
    except (json.JSONDecodeError, KeyError, IndexError, TypeError, ValueError):
        pass
    return leader, left


def quorum_members(names: list[str], victim: str) -> str | None:
    """Every quorum queue of every vhost has a member on every node."""
    res = run_in(victim, "rabbitmqctl", "-q", "list_vhosts", "name", "--formatter", "json", timeout=60)
    try:
        vhosts = [v["name"] for v in json.loads(res.stdout)]
    except (json.JSONDecodeError, KeyError, TypeError):
        return f"rabbitmqctl list_vhosts on {victim} failed: {res.stderr.strip()[:200]}"
    queues = []
    for vhost in vhosts:
        res = run_in(victim, "rabbitmqctl", "-q", "list_queues", "--vhost", vhost,
                       "name", "type", "members", "--formatter", "json", timeout=60)  # fmt: skip
        try:
            queues += json.loads(res.stdout)
        except json.JSONDecodeError:
            return f"rabbitmqctl list_queues --vhost {vhost} on {victim} failed: {res.stderr.strip()[:200]}"
    quorum = [q for q in queues if q.get("type") == "quorum"]
    if not quorum:
        return f"no quorum queue on {victim} (vhosts {vhosts})"
    short = [q for q in quorum if len(q.get("members") or []) < len(names)]
    if short:
        return "quorum queues without a member on every node: " + ", ".join(
            f"{q['name']} {q['members']}" for q in short[:5]
        )
    return None


def dags_match(names: list[str], victim: str) -> str | None:
    listing = {}
    for node in names:
        res = run_in(
            node, "sh", "-c", f"cd {DAGS} && find . -type f ! -name '*.pyc' | sort | xargs -r md5sum"
        )
        listing[node] = res.stdout
    peer = next(n for n in names if n != victim)
    if listing[victim] != listing[peer]:
        return f"{victim}'s DAG folder differs from {peer}'s"
    res = labctl("salt", victim, "csync2.in_sync", "--out=json", timeout=300)
    try:
        verdict = json.loads(res.stdout)[victim]
    except (json.JSONDecodeError, KeyError, TypeError):
        return f"csync2.in_sync on {victim}: {res.stdout[-300:]}"
    if not (isinstance(verdict, dict) and verdict.get("in_sync")):
        return f"csync2.in_sync on {victim}: {str(verdict)[:300]}"
    return None
