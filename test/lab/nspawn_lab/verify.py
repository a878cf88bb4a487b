"""The verification suite (test/integration) against the lab, and
`test-cluster`: up, apply, verify, re-apply with 0 changes, down.
"""

from __future__ import annotations

import os
import time

from .conf import REPO, VENV_BIN, progress, run
from .lifecycle import cmd_down, cmd_up, refuse_if_up
from .nodes import nsenter
from .rootfs import SUITE_PACKAGES, ensure_host_packages
from .salt import apply_state


def verify(args=()) -> int:
    ensure_host_packages(SUITE_PACKAGES)
    progress("verify: pytest test/integration")
    return run([VENV_BIN / "pytest", "-q", "-rs", "--durations=12", REPO / "test" / "integration", *args],
               check=False).returncode  # fmt: skip


def cmd_verify(args) -> int:
    return verify(args)


def api_health(node: dict) -> str:
    """The node's Airflow API health answer ('' while it does not answer)."""
    return nsenter(
        node["name"], "curl", "-s", "-m", "5", f"http://{node['address']}:8080/api/v2/monitor/health",
        capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip


def wait_api(cfg: dict, timeout: float = 300.0, interval: float = 5.0, ask=api_health) -> dict:
    """{node: health answer}, waiting (bounded, with progress) until every
    node's API answers: right after an apply an API server may still start."""
    answers, deadline = {}, time.monotonic() + timeout
    while True:
        for node in cfg["nodes"]:
            if node["name"] not in answers:
                answer = ask(node)
                if answer:
                    answers[node["name"]] = answer
        pending = [n["name"] for n in cfg["nodes"] if n["name"] not in answers]
        left = deadline - time.monotonic()
        if not pending or left <= 0:
            return answers
        progress(f"waiting for the Airflow API on {', '.join(pending)} ({left:.0f} s left)")
        time.sleep(interval)


def smoke(cfg: dict) -> None:
    answers = wait_api(cfg)
    for node in cfg["nodes"]:
        proc = nsenter(node["name"], "systemctl", "--failed", "--no-legend", "--plain",
                       capture_output=True, text=True)  # fmt: skip
        failed = proc.stdout.strip() or "none"
        print(
            f"  {node['name']}: failed units: {failed}; API health: {answers.get(node['name']) or 'no answer'}"
        )


DIAG_UNITS = ("etcd", "patroni", "rabbitmq-server")


def diagnose(names) -> None:
    """What a failed apply leaves for the reader of a CI log: the failed
    units and the start and end of the journal of the daemons the first
    apply waits on."""
    for name in names:
        print(f"--- {name}: systemctl --failed; journal of {', '.join(DIAG_UNITS)}")
        script = (
            "systemctl --failed --no-legend --plain; "
            "for u in " + " ".join(DIAG_UNITS) + "; do "
            'echo "$u: $(systemctl show -p ActiveState -p SubState -p NRestarts -p ActiveEnterTimestamp $u '
            '| paste -sd " ")"; done; '
            # each unit's first lines (what it did at start) and its last
            "for u in " + " ".join(DIAG_UNITS) + '; do echo "--- $u"; '
            "journalctl --no-pager -o short-precise -u $u | head -n 30; echo ...; "
            "journalctl --no-pager -o short-precise -u $u -n 30; done"
        )
        proc = nsenter(name, "sh", "-c", script, capture_output=True, text=True)
        print(proc.stdout + proc.stderr, flush=True)


def cmd_test_cluster(_args) -> int:
    refuse_if_up("test-cluster")
    os.environ.setdefault("LAB_SNAPSHOT", "1")
    rc = 1
    try:
        cmd_up([])
        summary, _ = apply_state()
        if any(failed for _, failed in summary.values()):
            progress("first apply failed")
            diagnose([n for n, (_, failed) in summary.items() if failed])
            rc = 1
            return rc
        rc = verify()
        summary, _ = apply_state()
        nonzero = {n: c for n, (c, f) in summary.items() if c or f}
        if nonzero:
            progress(f"re-apply NOT idempotent: {nonzero}")
            rc = rc or 1
        else:
            progress("re-apply: 0 changes on every node")
    finally:
        cmd_down([])
    progress(f"test-cluster {'PASSED' if rc == 0 else 'FAILED'}")
    return rc
