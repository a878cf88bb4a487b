"""Render tier, pgbackrest:enabled: the states each node gets (db nodes: the
TLS server and the database side; the backup node: the repository, stanza,
check, first full backup, timers), the files they render (pgbackrest.conf,
repo.conf, the units, Patroni's archive settings and the restore bootstrap),
no secret in rendered state data, and the two orchestrations."""

import copy
import json
import os
import socket
import subprocess
import time

import pytest
import salt.utils.yaml
from test_render import (
    EXAMPLE,
    OS_GRAINS,
    _args,
    _assert_no_secret,
    _orch_stages,
    _render,
    _states,
    _variant,
    render_files,
)

# pillar.example's node3 spells the default roles out; the lab's adds backup
BACKUP_ROLES = [*EXAMPLE["airflow_ha"]["nodes"]["node3"]["roles"], "backup"]


def _pillar(etcd_tls, s3=False, dedicated=False, restore=None):
    pillar = copy.deepcopy(EXAMPLE)
    ah = pillar["airflow_ha"]
    ah["etcd"]["tls"] = copy.deepcopy(etcd_tls)
    spare = ah["etcd"]["tls"]["certs"].pop("node4-spare")
    ah["pgbackrest"]["enabled"] = True
    if dedicated:  # the repository on a host of its own
        ah["nodes"]["node4"] = {"address": "10.77.0.14", "roles": ["backup"]}
        ah["etcd"]["tls"]["certs"]["node4"] = spare
    else:
        ah["nodes"]["node3"]["roles"] = list(BACKUP_ROLES)
    if s3:
        ah["pgbackrest"]["s3"].update(
            enabled=True, endpoint="minio.internal", bucket="backups", region="us-east-1", uri_style="path"
        )
    if restore:
        ah["restore"] = restore
    return pillar


@pytest.fixture(scope="module")
def tls5(tmp_path_factory):
    """etcd TLS for node1..3 and a spare certificate for a node4."""
    from testlib import load_lab_pki

    nodes = {"node1": "10.77.0.11", "node2": "10.77.0.12", "node3": "10.77.0.13", "node4": "10.77.0.14"}
    tls = load_lab_pki().etcd_tls_pillar(nodes, tmp_path_factory.mktemp("pki5"))
    tls["certs"]["node4-spare"] = tls["certs"].pop("node4")
    return tls


def _ids(states):
    return sorted(sid for sid in states if sid.startswith("airflow_ha-pgbackrest-"))


DB_IDS = [
    "airflow_ha-pgbackrest-config",
    "airflow_ha-pgbackrest-package",
    "airflow_ha-pgbackrest-server",
    "airflow_ha-pgbackrest-spool",
    "airflow_ha-pgbackrest-tls-ca",
    "airflow_ha-pgbackrest-tls-cert",
    "airflow_ha-pgbackrest-tls-dir",
    "airflow_ha-pgbackrest-tls-key",
    "airflow_ha-pgbackrest-archive-get-script",
]
DB_ONLY = ("airflow_ha-pgbackrest-spool", "airflow_ha-pgbackrest-archive-get-script")
REPO_IDS = [
    "airflow_ha-pgbackrest-backup-units",
    "airflow_ha-pgbackrest-check",
    "airflow_ha-pgbackrest-daemon-reload",
    "airflow_ha-pgbackrest-first-full-repo1",
    "airflow_ha-pgbackrest-repo-config",
    "airflow_ha-pgbackrest-repo-dir",
    "airflow_ha-pgbackrest-stanza",
    "airflow_ha-pgbackrest-timers",
]


@pytest.mark.parametrize("node", ["node1", "node2", "node3"])
def test_db_nodes_and_the_backup_node(tmp_path, tls5, node):
    pillar = _pillar(tls5)
    states = _states(_render(tmp_path, node, OS_GRAINS["Debian-12"], pillar))
    _assert_no_secret(states, pillar)
    want = sorted(DB_IDS + (REPO_IDS if node == "node3" else []))
    assert _ids(states) == want
    # the TLS material comes from pillar by path: etcd's, reused
    key = _args(states["airflow_ha-pgbackrest-tls-key"]["file"])
    assert key["contents_pillar"] == f"airflow_ha:etcd:tls:certs:{node}:key"
    assert (key["user"], key["mode"], key["show_changes"]) == ("postgres", "0600", False)
    for sid in ("airflow_ha-pgbackrest-config",) + (
        ("airflow_ha-pgbackrest-repo-config",) if node == "node3" else ()
    ):
        conf = _args(states[sid]["file"])
        assert (conf["user"], conf["group"], conf["mode"], conf["show_changes"]) == (
            "root",
            "postgres",
            "0640",
            False,
        )
    # the Patroni guard against a plain apply during a restore
    assert "airflow_ha-postgresql-no-restore-under-way" in states


def test_disabled_renders_nothing_of_it(tmp_path):
    states = _states(_render(tmp_path, "node3", OS_GRAINS["Debian-12"], _variant("example")))
    assert _ids(states) == [] and "airflow_ha-postgresql-no-restore-under-way" not in states
    dyn = _args(states["airflow_ha-postgresql-dynamic-config"]["patroni"])["config"]
    # with backups off the live PATCH removes pgBackRest's keys (if an earlier apply set them)
    assert dyn["postgresql"]["parameters"]["archive_command"] is None
    assert dyn["postgresql"]["recovery_conf"] is None and dyn["postgresql"]["pgbackrest"] is None


def test_dedicated_backup_host(tmp_path, tls5):
    pillar = _pillar(tls5, dedicated=True)
    states = _states(_render(tmp_path, "node4", OS_GRAINS["Debian-12"], pillar))
    assert _ids(states) == sorted([i for i in DB_IDS if i not in DB_ONLY] + REPO_IDS)
    assert "airflow_ha-postgresql-patroni-service" not in states
    (tmp_path / "n1").mkdir()
    node1 = _states(_render(tmp_path / "n1", "node1", OS_GRAINS["Debian-12"], pillar))
    assert "airflow_ha-pgbackrest-stanza" not in node1


def _files(tmp_path, states, wanted):
    """Render the file templates of ``wanted`` {name: (state id, index in names or None)}."""
    jobs = {}
    for name, (sid, idx) in wanted.items():
        a = _args(states[sid]["file"])
        if idx is not None:
            ((_, body),) = a["names"][idx].items()
            a = _args(body)
        jobs[str(tmp_path / name)] = (a["source"], a.get("context") or {})
    return render_files(tmp_path, jobs)


def _ini(text):
    """{section: [(key, value), ...]} of a pgBackRest config."""
    out, section = {}, None
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            out[section] = []
        elif "=" in line and not line.startswith("#"):
            out[section].append(tuple(line.split("=", 1)))
    return out


def test_the_files_on_the_backup_node(tmp_path, tls5):
    pillar = _pillar(tls5, s3=True)
    secrets = pillar["airflow_ha"]["secrets"]
    states = _states(_render(tmp_path, "node3", OS_GRAINS["Debian-12"], pillar))
    files = _files(
        tmp_path,
        states,
        {
            "db.conf": ("airflow_ha-pgbackrest-config", None),
            "repo.conf": ("airflow_ha-pgbackrest-repo-config", None),
            "backup@.service": ("airflow_ha-pgbackrest-backup-units", 0),
            "full.timer": ("airflow_ha-pgbackrest-backup-units", 1),
            "diff.timer": ("airflow_ha-pgbackrest-backup-units", 2),
            "patroni.yml": ("airflow_ha-postgresql-patroni-config", None),
        },
    )
    db = _ini(files["db.conf"])
    glob = dict(db["global"])
    assert glob["repo1-host"] == "node3" and glob["repo1-host-type"] == "tls"
    assert glob["repo1-host-config"] == "/etc/pgbackrest/repo.conf"
    assert glob["tls-server-address"] == "10.77.0.13" and glob["tls-server-port"] == "8432"
    auth = [v for k, v in db["global"] if k == "tls-server-auth"]
    assert auth == ["node1=airflow-ha", "node2=airflow-ha", "node3=airflow-ha"]
    # repo2 is written to directly by archive-push: its keys on the database side too
    assert glob["repo2-type"] == "s3" and glob["repo2-s3-uri-style"] == "path"
    assert glob["repo2-cipher-pass"] == secrets["pgbackrest_cipher_pass"]
    assert "repo1-cipher-pass" not in glob  # repo1's encryption happens on its host
    assert dict(db["airflow-ha"])["pg1-path"] == "/var/lib/postgresql/patroni"
    repo = _ini(files["repo.conf"])
    rglob = dict(repo["global"])
    assert rglob["repo1-path"] == "/var/lib/pgbackrest" and rglob["repo1-cipher-type"] == "aes-256-cbc"
    assert rglob["repo1-cipher-pass"] == secrets["pgbackrest_cipher_pass"]
    assert (rglob["repo1-retention-full"], rglob["repo2-retention-diff"]) == ("2", "6")
    hosts = [v for k, v in repo["airflow-ha"] if k.endswith("-host")]
    assert hosts == ["node1", "node2", "node3"]
    unit = files["backup@.service"]
    starts = [line for line in unit.splitlines() if line.startswith("ExecStart=")]
    assert starts == [
        f"ExecStart=/usr/bin/pgbackrest --config=/etc/pgbackrest/repo.conf --stanza=airflow-ha --type=%i "
        f"--repo={n} backup"
        for n in (1, 2)
    ]
    assert "User=postgres" in unit
    assert "OnCalendar=Sun *-*-* 01:00:00" in files["full.timer"]
    assert "Unit=airflow_ha-pgbackrest-backup@diff.service" in files["diff.timer"]
    assert "OnCalendar=Mon..Sat *-*-* 01:00:00" in files["diff.timer"]
    # no secret in a unit (argv of every backup) or Patroni's commands
    for secret in (secrets["pgbackrest_cipher_pass"], secrets["pgbackrest_s3_key_secret"]):
        assert secret not in unit and secret not in files["patroni.yml"]
    patroni = salt.utils.yaml.safe_load(files["patroni.yml"])
    pg = patroni["bootstrap"]["dcs"]["postgresql"]
    assert pg["parameters"]["archive_mode"] == "on"
    assert pg["parameters"]["archive_command"] == "pgbackrest --stanza=airflow-ha archive-push %p"
    assert pg["parameters"]["archive_timeout"] == 60
    # standbys fetch through the repository probe; the PITR restore below does not
    probe = "/usr/local/lib/airflow_ha/pgbackrest-archive-get"
    assert pg["recovery_conf"] == {"restore_command": f'{probe} %f "%p"'}
    assert pg["create_replica_methods"] == ["pgbackrest", "basebackup"]
    assert pg["pgbackrest"] == {
        "command": "/usr/bin/pgbackrest --stanza=airflow-ha --delta restore",
        "keep_data": True,
        "no_params": True,
    }
    assert "method" not in patroni["bootstrap"]  # no restore: initdb bootstraps
    # the live PATCH carries the same settings (one derivation, settings' dcs)
    dyn = _args(states["airflow_ha-postgresql-dynamic-config"]["patroni"])["config"]
    assert dyn["postgresql"]["create_replica_methods"] == pg["create_replica_methods"]
    assert dyn["postgresql"]["parameters"]["archive_command"] == pg["parameters"]["archive_command"]


def test_the_restore_bootstrap_only_with_a_restore_target(tmp_path, tls5):
    pillar = _pillar(tls5, restore={"target_time": "2024-05-01 14:00:00+02:00"})
    states = _states(_render(tmp_path, "node1", OS_GRAINS["Debian-12"], pillar))
    files = _files(tmp_path, states, {"patroni.yml": ("airflow_ha-postgresql-patroni-config", None)})
    boot = salt.utils.yaml.safe_load(files["patroni.yml"])["bootstrap"]
    assert boot["method"] == "airflow_ha_restore"
    method = boot["airflow_ha_restore"]
    assert method["command"] == (
        "/usr/bin/pgbackrest --stanza=airflow-ha --delta --type=time '--target=2024-05-01 12:00:00+00' "
        "--target-action=promote --target-timeline=latest restore"
    )
    assert method["no_params"] is True and method["keep_existing_recovery_conf"] is False
    assert method["recovery_conf"] == {
        "restore_command": 'pgbackrest --stanza=airflow-ha archive-get %f "%p"',
        "recovery_target_timeline": "latest",
        "recovery_target_time": "2024-05-01 12:00:00+00",
        "recovery_target_action": "promote",
    }


def test_restore_states_render(tmp_path, tls5):
    pillar = _pillar(tls5, restore={"target_time": "latest"})
    sls = ",".join(
        f"airflow_ha.pgbackrest.restore.{n}"
        for n in ("precheck", "stop", "stop_db", "dcs", "bootstrap", "rejoin", "whole", "done")
    )
    states = _states(_render(tmp_path, "node2", OS_GRAINS["Debian-12"], pillar, sls=sls))
    _assert_no_secret(states, pillar)
    aside = _args(states["airflow_ha-pgbackrest-restore-set-aside"]["file"])
    assert (aside["name"], aside["source"]) == (
        "/var/lib/postgresql/patroni.pre-restore",
        "/var/lib/postgresql/patroni",
    )
    marker = _args(states["airflow_ha-pgbackrest-restore-marker"]["file"])
    assert json.loads(marker["contents"]) == {"target": "latest", "node": "node1"}
    stops = [sid for sid in states if sid.startswith("airflow_ha-pgbackrest-restore-stop-")]
    assert "airflow_ha-pgbackrest-restore-stop-scheduler" in stops
    dcs = _args(states["airflow_ha-pgbackrest-restore-dcs-removed"]["cmd"])
    assert dcs["stdin"] == "airflow-ha\nYes I am aware\n"
    members = _args(states["airflow_ha-pgbackrest-restore-members"]["patroni"])
    assert members["members"] == ["node1", "node2", "node3"] and members["timeout"] == 3600


def test_orchestration_includes_the_pgbackrest_stage(tmp_path, tls5):
    stages = _orch_stages(tmp_path, _pillar(tls5))
    order = [sid.removeprefix("airflow_ha-orch-") for sid in stages]
    assert order.index("pgbackrest") == order.index("postgresql") + 1
    assert stages["airflow_ha-orch-pgbackrest"] == (["airflow_ha.pgbackrest"], ["node1", "node2", "node3"])


def _restore_orch(tmp_path, pillar, restore, raw=False):
    pillar = copy.deepcopy(pillar)
    del pillar["airflow_ha"]["secrets"]  # the master's view needs none
    if restore is not None:
        pillar["restore"] = restore
    return _orch_stages(tmp_path, pillar, raw=raw, sls="airflow_ha.orch.restore")


def test_restore_orchestration_steps(tmp_path, tls5):
    stages = _restore_orch(tmp_path, _pillar(tls5), {"target_time": "2024-05-01 12:00:00Z", "node": "node2"})
    order = [sid.removeprefix("airflow_ha-orch-restore-") for sid in stages]
    assert " ".join(order) == (
        "plan precheck stop stop-db dcs bootstrap backup rejoin whole done postgresql airflow health report"
    )
    assert stages["airflow_ha-orch-restore-plan"] == ("pgbackrest.restore_plan", "node3")
    assert stages["airflow_ha-orch-restore-stop"][1] == ["node1", "node2", "node3"]
    assert stages["airflow_ha-orch-restore-bootstrap"] == (
        ["airflow_ha.pgbackrest.restore.bootstrap"],
        ["node2"],
    )
    assert stages["airflow_ha-orch-restore-rejoin"][1] == ["node1", "node3"]
    assert stages["airflow_ha-orch-restore-backup"] == ("pgbackrest.backup", "node3")
    (tmp_path / "raw").mkdir()
    data = _restore_orch(tmp_path / "raw", _pillar(tls5), {"target_time": "2024-05-01 12:00:00Z"}, raw=True)
    plan = {
        k: v
        for i in data["airflow_ha-orch-restore-plan"]["salt"]
        if isinstance(i, dict)
        for k, v in i.items()
    }
    assert plan["kwarg"]["target_time"] == "2024-05-01 12:00:00+00" and plan["failhard"] is True
    backup = {
        k: v
        for i in data["airflow_ha-orch-restore-backup"]["salt"]
        if isinstance(i, dict)
        for k, v in i.items()
    }
    assert backup["kwarg"]["expire"] is False  # nothing the restore started from is expired
    assert backup["kwarg"]["standby"] is False  # no standby exists yet
    boot = {
        k: v
        for i in data["airflow_ha-orch-restore-bootstrap"]["salt"]
        if isinstance(i, dict)
        for k, v in i.items()
    }
    assert boot["pillar"] == {
        "airflow_ha": {"restore": {"target_time": "2024-05-01 12:00:00+00", "node": "node1", "timeout": 3600}}
    }
    assert "stanza-delete" not in json.dumps(data) and '"expire"' not in json.dumps(data).replace(
        '"expire": false', ""
    )


@pytest.mark.parametrize(
    ("restore", "sid", "words"),
    [
        (None, "airflow_ha-orch-restore-what", "needs the target"),
        ({"target_time": "2024-05-01 12:00:00"}, "airflow_ha-orch-restore-pillar", "has no time zone"),
        ({"target_time": "latest", "node": "node9"}, "airflow_ha-orch-restore-pillar", "is not a db node"),
    ],
)
def test_restore_orchestration_refuses_before_anything(tmp_path, tls5, restore, sid, words):
    data = _restore_orch(tmp_path, _pillar(tls5), restore, raw=True)
    assert list(data) == [sid]
    assert words in json.dumps(data)


def test_restore_orchestration_without_backups(tmp_path):
    pillar = _variant("example")
    data = _restore_orch(tmp_path, pillar, {"target_time": "latest"}, raw=True)
    assert list(data) == ["airflow_ha-orch-restore-pillar"]
    assert "pgbackrest:enabled is false" in json.dumps(data)


def _run_probe(script, port):
    """Run the rendered restore_command script (repo1 at 127.0.0.1:``port``;
    no pgbackrest binary is on this host) and return (exit code, stderr, s)."""
    text = script.replace("/dev/tcp/node3/8432", f"/dev/tcp/127.0.0.1/{port}")
    start = time.monotonic()
    proc = subprocess.run(
        ["bash", "-c", text, "archive-get", "000000010000000000000005", "pg_wal/RECOVERYXLOG"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return proc.returncode, proc.stderr, time.monotonic() - start


def test_restore_command_answers_not_archived_when_the_repository_is_down(tmp_path, tls5):
    """Standbys and promotions fetch WAL through a probe of repo1's TLS
    server: a dead repository host answers 'not archived' (exit 1) within
    repo_probe_ms, so PostgreSQL streams instead of waiting on pgBackRest's
    timeouts; a listening repository gets the real pgbackrest archive-get."""
    pillar = _pillar(tls5)
    pillar["airflow_ha"]["pgbackrest"]["repo_probe_ms"] = 300
    states = _states(_render(tmp_path, "node1", OS_GRAINS["Debian-12"], pillar))
    script = _files(tmp_path, states, {"get": ("airflow_ha-pgbackrest-archive-get-script", None)})["get"]
    assert script.startswith("#!/bin/bash\n")
    assert 'exec /usr/bin/pgbackrest --stanza=airflow-ha archive-get "$1" "$2"' in script
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    rc, err, took = _run_probe(script, port)
    assert rc == 1 and "unreachable within 300 ms" in err, err
    # a host that does not answer at all (SYNs dropped: a full accept queue)
    with socket.socket() as full, socket.socket() as queued:
        full.bind(("127.0.0.1", 0))
        full.listen(0)
        queued.connect(full.getsockname())
        rc, err, took = _run_probe(script, full.getsockname()[1])
        assert rc == 1 and "unreachable within 300 ms" in err, err
        assert took < 5, f"the probe took {took:.1f} s"
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        rc, err, _ = _run_probe(script, server.getsockname()[1])
    # reachable: the script execs pgbackrest (absent on a test host: 127)
    assert "unreachable" not in err, err
    if not os.path.exists("/usr/bin/pgbackrest"):
        assert rc == 127 and "/usr/bin/pgbackrest" in err, err
