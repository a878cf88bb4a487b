"""`labctl kitchen SUITE`: a kitchen.yml suite masterless on an extra lab
node (Test Kitchen itself cannot be installed here), then the verifier.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time

from .conf import (
    REPO,
    STATE,
    VENV_BIN,
    LabError,
    config,
    progress,
    proxy_pillar,
    run,
    write,
)
from .nodes import extra_node, node_boot, node_prepare, node_remove, node_stop, nsenter, wait_node_ready
from .rootfs import lab_rootfs
from .salt import summarize


def cmd_kitchen(args) -> int:
    """kitchen.yml's suite, masterless on an extra lab node, then the verifier."""
    import yaml

    if len(args) != 1:
        raise LabError("usage: labctl kitchen SUITE (a suite of kitchen.yml)")
    if not (STATE / "lab.json").exists():
        raise LabError("the lab is down: labctl up first (the kitchen node uses its proxies)")
    kitchen = yaml.safe_load((REPO / "kitchen.yml").read_text())
    suites = {s["name"]: s for s in kitchen.get("suites", [])}
    if args[0] not in suites:
        raise LabError(f"no suite {args[0]!r} in kitchen.yml; suites: {', '.join(suites)}")
    prov = {**kitchen.get("provisioner", {}), **suites[args[0]].get("provisioner", {})}
    cfg = config()
    minion_id = prov.get("salt_minion_id", "node1")
    node = extra_node(cfg, "kitchen", 31)
    name = node["name"]
    rc = 1
    try:
        node_stop(name, graceful=False)
        node_remove(name)
        progress(f"kitchen suite {args[0]}: booting lab node {name} ({node['address']}) as {minion_id}")
        merged = node_prepare(cfg, node, lab_rootfs(cfg), minion=False, hostname=minion_id)
        # The formula and the suite's pillars, as kitchen-salt lays them out.
        srv = merged / "srv"
        for sub in ("airflow_ha", "_modules", "_states", "_utils", "_runners"):
            if (REPO / sub).is_dir():
                shutil.copytree(REPO / sub, srv / "salt" / sub, ignore=shutil.ignore_patterns("__pycache__"))
        top = prov.get("pillars", {}).get("top.sls", {"base": {"*": []}})
        for sls, path in (prov.get("pillars_from_files") or {}).items():
            write(srv / "pillar" / sls, (REPO / path).read_text())
        for sls, data in (prov.get("pillars") or {}).items():
            if sls != "top.sls":
                write(srv / "pillar" / sls, yaml.safe_dump(data))
        # The lab's proxies (the node has no route out), merged last.
        proxy = {
            "airflow_ha": {
                "proxy": proxy_pillar(cfg),
                "network": {"prefix": cfg["prefix"]},
                "vip": {"interface": "host0"},
            }
        }
        write(srv / "pillar" / "lab_proxy.sls", yaml.safe_dump(proxy))
        for targets in top.get("base", {}).values():
            targets.append("lab_proxy")
        write(srv / "pillar" / "top.sls", yaml.safe_dump(top))
        write(
            merged / "etc/salt/minion.d/kitchen.conf",
            f"id: {minion_id}\nfile_client: local\nfile_roots: {{base: [/srv/salt]}}\n"
            "pillar_roots: {base: [/srv/pillar]}\n",
        )
        node_boot(cfg, node, hostname=minion_id)
        wait_node_ready(name)
        nsenter(name, "salt-call", "--local", "saltutil.sync_all", check=True, stdout=subprocess.DEVNULL)
        results = []
        for attempt in ("converge", "re-apply"):
            progress(f"kitchen {attempt}: salt-call --local state.apply airflow_ha")
            start = time.monotonic()
            proc = nsenter(
                name, "salt-call", "--local", "state.apply", "airflow_ha", "--out=json",
                capture_output=True, text=True,
            )  # fmt: skip
            try:
                ret = json.loads(proc.stdout).get("local")
            except json.JSONDecodeError:
                ret = proc.stdout[-2000:] + proc.stderr[-2000:]
            changes, failed = summarize(ret)
            results.append((changes, failed))
            progress(f"kitchen {attempt}: {changes} changed, {len(failed)} failed "
                     f"in {time.monotonic() - start:.0f} s")  # fmt: skip
            for line in failed:
                print(f"    FAILED {line}")
            if failed:
                return 1
        out = nsenter(name, "salt-call", "--local", "pillar.items", "unmask=True", "--out=json",
                      capture_output=True, text=True, check=True).stdout  # fmt: skip
        pillar_file = STATE / "kitchen-pillar.yml"
        write(pillar_file, yaml.safe_dump(json.loads(out)["local"]), 0o600)
        env = dict(os.environ, AIRFLOW_HA_HOSTS=f"lab://{name}", AIRFLOW_HA_PILLAR=str(pillar_file))
        progress("kitchen verify: pytest test/integration")
        rc = run(
            [VENV_BIN / "pytest", "-q", "-rs", REPO / "test/integration"], check=False, env=env
        ).returncode
        if results[1][0]:
            progress(f"kitchen re-apply NOT idempotent: {results[1][0]} changes")
            rc = rc or 1
    finally:
        if os.environ.get("LAB_KEEP") != "1":
            node_stop(name, graceful=False)
            node_remove(name)
            (STATE / "kitchen-pillar.yml").unlink(missing_ok=True)
    return rc
