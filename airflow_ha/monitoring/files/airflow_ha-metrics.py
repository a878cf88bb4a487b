#!/usr/bin/python3
"""airflow_ha's own metrics for the node exporter's textfile collector
(managed by Salt, airflow_ha.monitoring; unit airflow_ha-metrics).

    airflow_ha-metrics --textfile /var/lib/prometheus/node-exporter/airflow_ha.prom --interval 30

Why a script of the formula's own: the csync2 watcher and the dag-processor
lock wrapper are the formula's pieces, no exporter knows them. Every
`interval` seconds this writes (atomically: a temporary file, then rename, as
the textfile collector asks) what their health needs:

  airflow_ha_csync2_dirty_files            files waiting to be pushed from here
  airflow_ha_csync2_dirty_seconds          how long files have been waiting (0: none)
  airflow_ha_csync2_unresolved_conflicts   conflicting files no winner has overwritten
  airflow_ha_csync2_conflict_events        conflict events logged in the last hour
  airflow_ha_csync2_last_push_timestamp_seconds / _last_push_ok   the last push
  airflow_ha_csync2_watcher_up             the inotify watcher unit is active
  airflow_ha_dag_processor_running         this node runs THE dag-processor (lock holder)
  airflow_ha_scheduler_healthy             (--scheduler URL) this node's scheduler health server
                                           answers 200 (its heartbeat is fresh)
  airflow_ha_scheduler_heartbeat_age_seconds   (--api URL) age of the cluster's latest
                                           scheduler heartbeat, as the API server reports it
  airflow_ha_rabbitmq_running_nodes / _partitions / _quorum_queues_below_quorum /
  _quorum_queues_degraded                  (--rabbitmq) what rabbitmq_prometheus does not
                                           export in 3.10: cluster view, quorum queue members
  airflow_ha_pgbackrest_last_backup_timestamp_seconds  (--pgbackrest STANZA) newest good backup
  airflow_ha_metrics_timestamp_seconds     when this file was written

Parsers are the formula's _utils (ah_csync2, ah_health), installed next to
this script. Standard library only; runs as root (csync2's database).
"""

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.request
from datetime import datetime

import ah_csync2
import ah_health

STATE_DIR = "/var/lib/csync2"
VHOST = os.environ.get("AIRFLOW_HA_RABBITMQ_VHOST", "/")
HELP = {
    "airflow_ha_csync2_dirty_files": "files waiting to be pushed from this node (csync2 -M)",
    "airflow_ha_csync2_dirty_seconds": "seconds files have been waiting to be pushed (0: none waiting)",
    "airflow_ha_csync2_unresolved_conflicts": "conflicting files still dirty here (resolve: csync2.force)",
    "airflow_ha_csync2_conflict_events": "csync2 conflict events logged in the last hour",
    "airflow_ha_csync2_last_push_timestamp_seconds": "time of the last push (watcher, timer or Salt)",
    "airflow_ha_csync2_last_push_ok": "1 when the last push succeeded",
    "airflow_ha_csync2_watcher_up": "1 when the csync2 inotify watcher unit is active",
    "airflow_ha_dag_processor_running": "1 when this node runs the dag-processor (holds the etcd lock)",
    "airflow_ha_metrics_timestamp_seconds": "when airflow_ha-metrics last wrote this file",
    "airflow_ha_scheduler_healthy": "1 when this node's scheduler health server answers 200",
    "airflow_ha_scheduler_heartbeat_age_seconds": "age of the latest scheduler heartbeat the API reports",
    "airflow_ha_rabbitmq_running_nodes": "RabbitMQ nodes this broker sees running",
    "airflow_ha_rabbitmq_partitions": "RabbitMQ nodes this broker reports a partition with",
    "airflow_ha_rabbitmq_quorum_queues_below_quorum": "quorum queues with fewer than a majority online",
    "airflow_ha_rabbitmq_quorum_queues_degraded": "quorum queues with a member offline",
    "airflow_ha_pgbackrest_last_backup_timestamp_seconds": "end of the newest good pgBackRest backup",
}


def _json_cmd(argv, timeout=30):
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
        return json.loads(proc.stdout) if proc.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return None


def rabbitmq_samples():
    """Cluster view and quorum queues from rabbitmqctl (nothing if it fails)."""
    status = _json_cmd(["rabbitmqctl", "cluster_status", "--formatter", "json"])
    if not isinstance(status, dict):
        return []
    parts = status.get("partitions") or {}
    partitioned = {p for v in (parts.values() if isinstance(parts, dict) else parts) for p in v}
    out = [
        ("airflow_ha_rabbitmq_running_nodes", {}, len(status.get("running_nodes") or [])),
        ("airflow_ha_rabbitmq_partitions", {}, len(partitioned)),
    ]
    queues = _json_cmd(
        [
            "rabbitmqctl",
            "list_queues",
            "--vhost",
            VHOST,
            "name",
            "type",
            "members",
            "online",
            "--formatter",
            "json",
        ]
    )
    if isinstance(queues, list):
        below = degraded = 0
        for q in queues:
            if q.get("type") != "quorum":
                continue
            members, online = len(q.get("members") or []), len(q.get("online") or [])
            below += online < members // 2 + 1
            degraded += online < members
        out += [
            ("airflow_ha_rabbitmq_quorum_queues_below_quorum", {}, below),
            ("airflow_ha_rabbitmq_quorum_queues_degraded", {}, degraded),
        ]
    return out


def scheduler_samples(health_url, api_url):
    """This node's scheduler health server (200: its heartbeat is fresh) and
    the API's view of the cluster's latest scheduler heartbeat (ISO time)."""
    out = []
    if health_url:
        try:
            with urllib.request.urlopen(health_url, timeout=5) as resp:  # nosec B310 (node address)
                healthy = resp.status == 200
        except OSError:
            healthy = False
        out.append(("airflow_ha_scheduler_healthy", {}, 1 if healthy else 0))
    if api_url:
        try:
            with urllib.request.urlopen(api_url, timeout=5) as resp:  # nosec B310 (node address)
                data = json.loads(resp.read().decode())
            beat = str(data["scheduler"]["latest_scheduler_heartbeat"]).replace("Z", "+00:00")
            age = max(0.0, time.time() - datetime.fromisoformat(beat).timestamp())
            out.append(("airflow_ha_scheduler_heartbeat_age_seconds", {}, age))
        except (OSError, ValueError, KeyError, TypeError):
            pass
    return out


def pgbackrest_samples(stanza):
    info = _json_cmd(
        ["runuser", "-u", "postgres", "--", "pgbackrest", f"--stanza={stanza}", "info", "--output=json"]
    )
    if not isinstance(info, list) or not info:
        return []
    stops = [
        b["timestamp"]["stop"]
        for b in info[0].get("backup") or []
        if not b.get("error") and isinstance((b.get("timestamp") or {}).get("stop"), int)
    ]
    return [("airflow_ha_pgbackrest_last_backup_timestamp_seconds", {}, max(stops))] if stops else []


def dirty_files():
    """{path: [peers]} from ``csync2 -M`` (exit 2: nothing dirty); None if it fails."""
    try:
        proc = subprocess.run(["csync2", "-M"], capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode == 2:
        return {}
    if proc.returncode != 0:
        return None
    files = {}
    for entry in ah_csync2.parse_dirty(proc.stdout):
        files.setdefault(entry["path"], []).append(entry["peer"])
    return files


def unit_active(unit):
    proc = subprocess.run(["systemctl", "is-active", "--quiet", unit], check=False)
    return proc.returncode == 0


def dag_processor_running():
    return ah_health.dag_processor_running()


def collect(now, dirty_since, state_dir=STATE_DIR):
    """(samples, dirty_since): ``dirty_since`` is when files started waiting
    (kept by the caller across runs), None when none wait."""
    samples = []
    files = dirty_files()
    if files is not None:
        if files and dirty_since is None:
            dirty_since = now
        elif not files:
            dirty_since = None
        events = ah_csync2.read_events(os.path.join(state_dir, "airflow_ha-events.jsonl"), now - 3600)
        samples += [
            ("airflow_ha_csync2_dirty_files", {}, len(files)),
            ("airflow_ha_csync2_dirty_seconds", {}, 0 if dirty_since is None else now - dirty_since),
            ("airflow_ha_csync2_unresolved_conflicts", {}, len(ah_csync2.unresolved(events, files))),
            ("airflow_ha_csync2_conflict_events", {}, len(events)),
        ]
    try:
        with open(os.path.join(state_dir, "airflow_ha-last-sync.json"), encoding="utf-8") as fh:
            last = json.load(fh)
        samples += [
            ("airflow_ha_csync2_last_push_timestamp_seconds", {}, float(last.get("time", 0))),
            ("airflow_ha_csync2_last_push_ok", {}, 1 if last.get("result") else 0),
        ]
    except (OSError, ValueError, TypeError, AttributeError):
        pass
    samples.append(("airflow_ha_csync2_watcher_up", {}, 1 if unit_active("airflow_ha-csync2-watcher") else 0))
    samples.append(("airflow_ha_dag_processor_running", {}, 1 if dag_processor_running() else 0))
    samples.append(("airflow_ha_metrics_timestamp_seconds", {}, now))
    return samples, dirty_since


def write(path, text):
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--textfile", required=True)
    parser.add_argument("--interval", type=float, default=30)
    parser.add_argument("--once", action="store_true")
    parser.add_argument("--scheduler", help="this node's scheduler health server /health URL")
    parser.add_argument("--api", help="this node's API server health URL (the latest scheduler heartbeat)")
    parser.add_argument("--rabbitmq", action="store_true", help="this node is a RabbitMQ broker")
    parser.add_argument("--pgbackrest", metavar="STANZA", help="this node holds the pgBackRest repository")
    args = parser.parse_args(argv)
    dirty_since = None
    while True:
        samples, dirty_since = collect(time.time(), dirty_since)
        if args.scheduler or args.api:
            samples += scheduler_samples(args.scheduler, args.api)
        if args.rabbitmq:
            samples += rabbitmq_samples()
        if args.pgbackrest:
            samples += pgbackrest_samples(args.pgbackrest)
        write(args.textfile, ah_health.metrics_text(samples, HELP))
        if args.once:
            return 0
        time.sleep(args.interval)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
