"""Failure drills: test/lab/drills.d/* scripts, one (`labctl drill NAME`) on
the lab as it is, or every one on a fresh lab (`labctl drills`).
"""

from __future__ import annotations

import os

from .conf import ACNG_PORT, LAB, STATE, WHEEL_PORT, LabError, config, figure, progress, run
from .lifecycle import cmd_down, cmd_up, refuse_if_up
from .salt import apply_state


def drill_env(cfg: dict) -> dict:
    return dict(
        os.environ,
        LABCTL=str(LAB / "labctl"),
        LAB_STATE=str(STATE),
        LAB_HOST=cfg["host"],
        LAB_WHEELS=f"http://{cfg['host']}:{WHEEL_PORT}/",
        LAB_APT_PROXY=f"http://{cfg['host']}:{ACNG_PORT}",
    )


def scripts(folder: str) -> list[str]:
    """The names of the executables of test/lab/FOLDER, in name order."""
    return sorted(p.name for p in (LAB / folder).iterdir() if p.is_file() and os.access(p, os.X_OK))


def run_scripts(folder: str, cfg: dict, names=None) -> int:
    """Run the executables of test/lab/FOLDER (or only ``names``) in name
    order; 1 if any failed."""
    rc, env = 0, drill_env(cfg)
    for script in (LAB / folder / name for name in scripts(folder)):
        if names is None or script.name in names:
            progress(f"{folder}/{script.name}")
            if run([script], check=False, env=env).returncode:
                figure(f"{folder}/{script.name}", "FAILED")
                rc = 1
    return rc


def run_one(folder: str, args: list) -> int:
    """One script of test/lab/FOLDER with its ARGS on the lab as it is."""
    usage = {"drills.d": "drill", "bench.d": "bench-one"}[folder]
    names = scripts(folder)
    if not args:
        raise LabError(f"usage: labctl {usage} NAME [ARGS...]; {folder[:-2]}: " + " ".join(names))
    if args[0] not in names:
        raise LabError(f"no script {args[0]} in {LAB / folder}; there: " + " ".join(names))
    return run([LAB / folder / args[0], *args[1:]], check=False, env=drill_env(config())).returncode


def cmd_drill(args) -> int:
    """labctl drill NAME [ARGS...]: one failure drill (test/lab/drills.d/NAME)
    on the lab as it is (converged); its figures on stdout."""
    return run_one("drills.d", args)


def cmd_bench_one(args) -> int:
    """labctl bench-one NAME [ARGS...]: one bench script (test/lab/bench.d/NAME)
    on the lab as it is (converged); its figures on stdout."""
    return run_one("bench.d", args)


def cmd_drills(_args) -> int:
    """Every drill on a fresh lab: up, converge, each drills.d script in turn
    (each restores the lab), down."""
    refuse_if_up("drills")
    os.environ.setdefault("LAB_SNAPSHOT", "1")
    rc = 0
    try:
        cmd_up([])
        summary, took = apply_state(quiet=True)
        figure("drills: cold converge wall time", f"{took:.0f}", "s")
        if any(failed for _, failed in summary.values()):
            figure("drills: cold converge FAILED states", sum(len(f) for _, f in summary.values()))
            return 1
        rc = run_scripts("drills.d", config())
    finally:
        cmd_down([])
    progress(f"drills {'PASSED' if rc == 0 else 'FAILED'}")
    return rc
