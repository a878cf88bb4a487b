"""The airflow_ha systemd-nspawn lab, as a package (run by test/lab/labctl).

One module per thing the lab drives: conf (environment, lab.json; not
`config`, which the package exports as the function config()), procs
(recorded host processes), rootfs, wheelhouse, network (bridge, apt proxy,
partitions), nodes (overlay, nspawn, nsenter), salt (the master, jobs),
lifecycle (up/down/start/kill), verify, drills, bench, kitchen, and cli (the
command table). The drills (drill_lib.py) and the verification suite
(test/integration/conftest.py) import the names below.
"""

from .cli import COMMANDS, cmd_heal, cmd_partition, main
from .conf import LAB, REPO, STATE, VENV_BIN, LabError, config, master_dir, node_cfg, progress
from .lifecycle import cmd_kill, cmd_start
from .network import partition_marker, partitioned
from .nodes import node_env, node_pid1, nsenter
from .salt import apply_state, salt_cmd, salt_job

__all__ = [
    "COMMANDS",
    "LAB",
    "REPO",
    "STATE",
    "VENV_BIN",
    "LabError",
    "apply_state",
    "cmd_heal",
    "cmd_kill",
    "cmd_partition",
    "cmd_start",
    "config",
    "main",
    "master_dir",
    "node_cfg",
    "node_env",
    "node_pid1",
    "nsenter",
    "partition_marker",
    "partitioned",
    "progress",
    "salt_cmd",
    "salt_job",
]
