"""Snapshot of everything the render tier renders, to diff before/after a refactor.

    .venv/bin/python test/tools/render_snapshot.py OUT_DIR [PKI_DIR]

For every pillar case of test/render (and the lab pillar on each node) it writes
OUT_DIR/<case>.states.json (state.show_sls of every SLS, sorted) and
OUT_DIR/<case>.files/<state id> (every file template those states render, with
their context), plus OUT_DIR/orch-<variant>.json (the orchestration). Run it on
the tree before the change and on the tree after, then `diff -r`: a refactor
that keeps behaviour leaves no difference. PKI_DIR keeps the etcd TLS test
certificates between the two runs (they are random on creation).
"""

from __future__ import annotations

import json
import pathlib
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "test"), str(ROOT / "test" / "render")]

import test_render as tr  # noqa: E402

_run = tr.subprocess.run


def _patient_run(*args, **kwargs):
    """The render tier's subprocess.run with room for a loaded host (its 120 s
    timeout is for CI; a snapshot must not lose a case to load)."""
    kwargs["timeout"] = max(kwargs.get("timeout") or 0, 900)
    return _run(*args, **kwargs)


tr.subprocess.run = _patient_run
from testlib import load_lab_pki  # noqa: E402

NODES = {"node1": "10.77.0.11", "node2": "10.77.0.12", "node3": "10.77.0.13"}


def cases():
    seen = {}
    for node, osf, variant in tr.CASES:
        seen[(node, osf, variant)] = "airflow_ha"
    for node, osf, variant in tr.SECRET_CASES:
        seen[(node, osf, variant)] = ",".join(tr.ALL_SLS)
    for node in NODES:
        seen[(node, "Debian-12", "lab")] = ",".join(tr.ALL_SLS)
    return seen


def templates(states):
    """{state id: (source, context)} of every templated file.managed."""
    wanted = {}
    for sid, body in states.items():
        for fun in ("file",):
            if fun not in body:
                continue
            args = tr._args(body[fun])
            if (
                "managed" in body[fun]
                and args.get("template")
                and str(args.get("source", "")).startswith("salt://")
            ):
                ctx = dict(args.get("defaults") or {}, **(args.get("context") or {}))
                wanted[sid] = (args["source"], ctx)
    return wanted


def main(out: pathlib.Path, pki: pathlib.Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    tls = load_lab_pki().etcd_tls_pillar(NODES, pki)
    for (node, osf, variant), sls in cases().items():
        name = f"{node}-{osf}-{variant}" + ("-all" if sls != "airflow_ha" else "")
        with tempfile.TemporaryDirectory() as tmp_dir:
            tmp = pathlib.Path(tmp_dir)
            pillar = tr._variant(variant, tls)
            proc = tr._render(tmp, node, tr.OS_GRAINS[osf], pillar, sls=sls)
            if proc.returncode:
                (out / f"{name}.error").write_text(proc.stdout + proc.stderr)
                continue
            states = json.loads(proc.stdout)["local"]
            (out / f"{name}.states.json").write_text(json.dumps(states, indent=1, sort_keys=True) + "\n")
            wanted = templates(states)
            files_dir = out / f"{name}.files"
            files_dir.mkdir(exist_ok=True)
            if wanted:
                dests = {str(tmp / "tpl" / sid): spec for sid, spec in wanted.items()}
                (tmp / "tpl").mkdir()
                for fname, text in tr.render_files(tmp, dests).items():
                    (files_dir / fname).write_text(text)
        print(name, flush=True)
    for variant in ("example", "split-roles", "options-on"):
        with tempfile.TemporaryDirectory() as tmp:
            data = tr._orch_stages(pathlib.Path(tmp), tr._variant(variant, tls), raw=True)
            (out / f"orch-{variant}.json").write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
        print(f"orch-{variant}", flush=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    pki_dir = pathlib.Path(sys.argv[2]) if len(sys.argv) == 3 else pathlib.Path(sys.argv[1]) / ".pki"
    sys.exit(main(pathlib.Path(sys.argv[1]), pki_dir))
