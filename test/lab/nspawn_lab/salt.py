"""The lab's Salt master (bound to the bridge address) and the jobs run
through it: state.apply on every node, collected from the job cache.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

from .conf import (
    LAB,
    REPO,
    SALT_PORTS,
    STATE,
    VENV_BIN,
    LabError,
    config,
    master_dir,
    progress,
    proxy_pillar,
    run,
    write,
)
from .nodes import node_pid1
from .procs import recorded_pid, spawn, wait_port


def file_root() -> Path:
    """The repo root (live edits are served at once), or with LAB_SNAPSHOT=1
    a copy of the formula taken at `up` (test-cluster/bench: a run that is not
    disturbed by commits landing while it converges)."""
    if os.environ.get("LAB_SNAPSHOT") != "1":
        return REPO
    snap = STATE / "snapshot"
    if not snap.exists():
        for sub in ("airflow_ha", "_modules", "_states", "_utils", "_runners"):
            if (REPO / sub).is_dir():
                shutil.copytree(REPO / sub, snap / sub, ignore=shutil.ignore_patterns("__pycache__"))
    return snap


def master_conf(cfg: dict) -> Path:
    root = master_dir()
    conf = root / "etc"
    conf.mkdir(parents=True, exist_ok=True)
    text = {
        "interface": cfg["host"],
        "publish_port": SALT_PORTS[0],
        "ret_port": SALT_PORTS[1],
        "user": "root",
        "root_dir": str(root),
        "pki_dir": str(root / "pki"),
        "cachedir": str(root / "cache"),
        "sock_dir": str(root / "sock"),
        "pidfile": str(root / "salt-master.pid"),
        "log_file": str(root / "master.log"),
        "key_logfile": str(root / "key.log"),
        "log_level_logfile": "info",
        "file_roots": {"base": [str(file_root())]},
        # the formula's runners (salt-run airflow_ha.health), from the served tree
        "runner_dirs": [str(file_root() / "_runners")],
        "pillar_roots": {"base": [str(LAB / "pillar"), str(STATE / "pillar")]},
        "file_ignore_regex": [r"(^|/)\.venv(/|$)", r"(^|/)\.git(/|$)", r"(^|/)\.pytest_cache"],
        "auto_accept": False,
        "timeout": 30,
        "gather_job_timeout": 30,
        "keep_jobs_seconds": 86400,
        "worker_threads": 5,
    }
    (conf / "master").write_text(json.dumps(text, indent=2) + "\n")
    write_generated_pillar(cfg)
    return conf


def write_generated_pillar(cfg: dict) -> None:
    """Nodes and host-side addresses of this lab (LAB_NODES, LAB_SUBNET)."""
    data = {
        "airflow_ha": {
            # roles only for nodes `labctl add` booted; test/lab/pillar has the others'
            "nodes": {
                n["name"]: {"address": n["address"], **({"roles": n["roles"]} if n.get("roles") else {})}
                for n in cfg["nodes"]
            },
            "network": {"prefix": cfg["prefix"]},
            "proxy": proxy_pillar(cfg),
            "vip": {"address": cfg["vip"]},
            "airflow": {"version": cfg["airflow_version"]},
        }
    }
    # Loaded by path: the verification suite imports this file by path too.
    spec = importlib.util.spec_from_file_location("lab_pki", LAB / "lab_pki.py")
    pki = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pki)
    nodes = {n["name"]: n["address"] for n in cfg["nodes"]}
    # csync2's certificates from pillar: `labctl wipe` keeps what peers pinned
    data["airflow_ha"]["csync2"] = {"certs": pki.csync2_certs_pillar(nodes, STATE / "pki")}
    if cfg["etcd_tls"]:
        data["airflow_ha"]["etcd"] = {"tls": pki.etcd_tls_pillar(nodes, STATE / "pki")}
    path = STATE / "pillar" / "lab_generated.sls"
    path.parent.mkdir(parents=True, exist_ok=True)
    # 0600: it holds the nodes' csync2 (and with etcd TLS on, etcd) private keys
    write(path, "# written by labctl (JSON is YAML)\n" + json.dumps(data, indent=2) + "\n", 0o600)


def master_start(cfg: dict) -> None:
    conf = master_conf(cfg)
    if recorded_pid("salt-master"):
        return
    spawn("salt-master", [VENV_BIN / "salt-master", "-c", conf, "-l", "warning"],
          master_dir() / "stdout.log")  # fmt: skip
    for port in SALT_PORTS:
        wait_port(cfg["host"], port, 60, "salt-master")


def salt_cmd(*args) -> list[str]:
    return [str(VENV_BIN / "salt"), "-c", str(master_dir() / "etc"), *map(str, args)]


def answering(names: list[str], timeout: float = 5) -> set[str]:
    """The minions of NAMES that answer test.ping within TIMEOUT seconds."""
    try:
        proc = run(
            salt_cmd("-L", ",".join(sorted(names)), "test.ping", "--out=json", "--static", "-t", timeout),
            check=False, capture_output=True, text=True, timeout=timeout + 60,
        )  # fmt: skip
        return {k for k, v in json.loads(proc.stdout or "{}").items() if v is True}
    except (subprocess.TimeoutExpired, json.JSONDecodeError, AttributeError):
        return set()


def wait_minions(names: list[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    pending = set(names)
    while pending and time.monotonic() < deadline:
        pending -= answering(sorted(pending))
        if pending:
            time.sleep(1)
    if pending:
        raise LabError(f"minions not answering test.ping: {', '.join(sorted(pending))}")


def salt_job(names: list[str], fun: str, *args, timeout: float = 3600) -> dict:
    """Run a job asynchronously and collect returns from the master's job
    cache: the salt CLI's find_job probing gives up on minions too busy to
    answer within gather_job_timeout (seen on a loaded 2-core host). Nodes
    that go down meanwhile (labctl kill) are not waited for."""
    proc = run(salt_cmd("-L", ",".join(names), fun, *args, "--async"), check=False,
               capture_output=True, text=True)  # fmt: skip
    jid = next((w for w in proc.stdout.split() if w.isdigit() and len(w) == 20), None)
    if jid is None:
        raise LabError(f"salt {fun}: no job id ({proc.stdout.strip()} {proc.stderr.strip()})")
    lookup = [VENV_BIN / "salt-run", "-c", master_dir() / "etc", "jobs.lookup_jid", jid, "--out=json"]
    deadline = time.monotonic() + timeout
    last = time.monotonic()
    ret: dict = {}
    while time.monotonic() < deadline:
        time.sleep(5)
        out = run(lookup, check=False, capture_output=True, text=True).stdout
        try:
            ret = json.loads(out or "{}")
        except json.JSONDecodeError:
            continue
        alive = [n for n in names if node_pid1(n)]
        if all(n in ret for n in alive):
            break
        if time.monotonic() - last > 60:
            last = time.monotonic()
            progress(f"{fun}: waiting for {', '.join(n for n in alive if n not in ret)}")
    return ret


def apply_state(extra=(), quiet=False) -> tuple[dict, float]:
    """state.apply airflow_ha on every node: returns ({node: (changes, failed)}, s)."""
    cfg = config()
    names = [n["name"] for n in cfg["nodes"]]
    start = time.monotonic()
    run(salt_cmd("*", "saltutil.sync_all"), check=False, stdout=subprocess.DEVNULL)
    progress(f"state.apply airflow_ha on {', '.join(names)}")
    ret = salt_job(names, "state.apply", "airflow_ha", "queue=True", *extra)
    took = time.monotonic() - start
    LAST_RETURN.clear()
    LAST_RETURN.update(ret)
    summary, changed_ids = {}, {}
    for name in names:
        CHANGED.clear()
        summary[name] = summarize(ret.get(name))
        changed_ids[name] = list(CHANGED)
    if not quiet:
        for name, (changes, failed) in summary.items():
            print(f"  {name}: {changes} changed, {len(failed)} failed")
            if len(changed_ids[name]) <= 15:  # a re-apply: name what changed
                for sid in changed_ids[name]:
                    print(f"    changed {sid}")
            for line in failed:
                print(f"    FAILED {line}")
    progress(f"apply took {took:.1f} s")
    return summary, took


CHANGED: list[str] = []  # state ids with changes, filled by summarize()
LAST_RETURN: dict = {}  # {node: its state return} of the last apply_state()


def summarize(ret: dict) -> tuple[int, list[str]]:
    """(changed states, failed states) of one minion's state return."""
    if not isinstance(ret, dict):
        return 0, [f"no state return: {ret!r}"]
    changes, failed = 0, []
    for sid, st in sorted(ret.items(), key=lambda kv: kv[1].get("__run_num__", 0)):
        if st.get("changes"):
            changes += 1
            CHANGED.append(sid)
        if st.get("result") is False:
            failed.append(f"{sid}: {str(st.get('comment', ''))[:600]}")
    return changes, failed
