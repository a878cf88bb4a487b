"""
Parsers for the health report (``_modules/airflow_ha_health.py``) and the
formula's own Prometheus metrics (``airflow_ha/monitoring/files/``).

Why here: HAProxy's ``show stat`` CSV, "is this process the dag-processor
(not its lock wrapper)?" and Prometheus' text format are needed by a Salt
module and by a helper shipped to the nodes; one copy, standard library only,
tested on recorded input (test/unit/utils/test_ah_health.py). A Salt
``_utils`` module: ``__utils__["ah_health.<function>"]``.
"""

import json
import os
import re


def parse_json(text):
    """``text`` decoded as a JSON object, or ``{}`` when it is not one."""
    try:
        data = json.loads(text)
    except (TypeError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def parse_haproxy_csv(text):
    """HAProxy's ``show stat`` answer (``# pxname,svname,...`` then one CSV
    line per proxy/server) as a list of dicts keyed by the header's names."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines or not lines[0].startswith("# "):
        return []
    header = lines[0][2:].split(",")
    return [dict(zip(header, line.split(","), strict=False)) for line in lines[1:]]


def is_dag_processor(argv):
    """True for ``<venv>/bin/python3 <venv>/bin/airflow dag-processor ...``,
    False for the lock wrapper (``bash airflow-locked-run ... -- airflow
    dag-processor``) and anything else."""
    argv = [a for a in argv if a]
    if len(argv) < 3 or not os.path.basename(argv[0]).startswith("python"):
        return False
    return os.path.basename(argv[1]) == "airflow" and argv[2] == "dag-processor"


def dag_processor_running(proc="/proc"):
    """True when an ``airflow dag-processor`` (not its lock wrapper) runs on
    this host: the runner's node grade and the node's metrics script ask."""
    for pid in os.listdir(proc):
        if not pid.isdigit():
            continue
        try:
            with open(f"{proc}/{pid}/cmdline", "rb") as fh:
                argv = fh.read().decode("utf-8", "replace").split("\0")
        except OSError:
            continue
        if is_dag_processor(argv):
            return True
    return False


_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")


def _label_value(value):
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def number(value):
    """A sample value in full precision (``%g`` would round a Unix time to
    six digits): integers as integers, other floats as Python's repr."""
    value = float(value)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def metrics_text(samples, helps=None):
    """Prometheus' text format for ``samples`` [(name, {label: value}, number)],
    with ``# HELP``/``# TYPE gauge`` from ``helps`` {name: text}, grouped by name
    in first-seen order. Raises ValueError for a bad metric or label name."""
    helps = helps or {}
    order, by_name = [], {}
    for name, labels, value in samples:
        if not _NAME.match(name) or any(not _NAME.match(k) or ":" in k for k in labels):
            raise ValueError(f"bad metric or label name in {name} {sorted(labels)}")
        if name not in by_name:
            order.append(name)
            by_name[name] = []
        by_name[name].append((labels, value))
    out = []
    for name in order:
        out.append(f"# HELP {name} {helps.get(name, name)}")
        out.append(f"# TYPE {name} gauge")
        for labels, value in by_name[name]:
            text = ",".join(f'{k}="{_label_value(v)}"' for k, v in sorted(labels.items()))
            out.append(f"{name}{{{text}}} {number(value)}" if text else f"{name} {number(value)}")
    return "\n".join(out) + "\n"
