"""pgBackRest (airflow_ha.pgbackrest): the TLS server on every db and backup
node, archiving that works (`pgbackrest check` from the backup node), a
backup in the repository, the timers only on the backup node, private files,
no secret in process arguments, and the module's monitoring figures."""

import json


def pgbackrest(node_exec, pgb, command, timeout=""):
    """`pgbackrest COMMAND` for the stanza on the repository node (pgb: the
    conftest fixture)."""
    b = pgb["b"]
    cmd = f"runuser -u postgres -- pgbackrest --config={b['repo_config_file']} --stanza={pgb['stanza']} {command}"
    return node_exec(pgb["repo"], f"{timeout} {cmd}".strip())


def test_tls_server_runs_on_every_pgbackrest_node(nodes, pgb, address):
    port = pgb["b"]["port"]
    for name in pgb["nodes"]:
        svc = nodes[name].service(pgb["b"]["service"])
        assert svc.is_running and svc.is_enabled, f"{pgb['b']['service']} on {name}"
        listening = nodes[name].run(f"ss -Htln 'sport = :{port}'").stdout
        assert f"{address(name)}:{port}" in listening, f"{name}: pgBackRest does not listen on its address"


def test_check_passes_from_the_backup_node(node_exec, pgb):
    """WAL switched on the primary and found in every repository."""
    res = pgbackrest(node_exec, pgb, "--log-level-console=info check", timeout="timeout 300")
    assert res.rc == 0, f"pgbackrest check: {res.stdout[-800:]} {res.stderr[-800:]}"
    assert "check command end: completed successfully" in res.stdout


def test_the_repository_holds_a_full_backup_and_wal(node_exec, pgb):
    res = pgbackrest(node_exec, pgb, "--output=json info")
    assert res.rc == 0, res.stderr
    (stanza,) = [s for s in json.loads(res.stdout) if s["name"] == pgb["stanza"]]
    assert stanza["status"]["code"] == 0, stanza["status"]
    assert stanza["cipher"] == "aes-256-cbc"
    assert any(b["type"] == "full" for b in stanza["backup"]), stanza["backup"]
    assert all(a["max"] for a in stanza["archive"]), stanza["archive"]


def test_module_reports_backup_and_archive_ages(salt, pgb):
    got = salt(pgb["repo"], "pgbackrest.info")[pgb["repo"]]
    assert isinstance(got, dict), got
    assert got["last_full"] is not None and got["last_backup"]["age"] >= 0
    # a check ran just before (test order): the newest WAL was archived moments ago
    assert got["last_archive"] is not None and got["last_archive"]["age"] < 600, got["last_archive"]
    assert got["restorable"]["from"] < got["restorable"]["to"]


def test_timers_only_on_the_backup_node(nodes, pgb):
    for name in pgb["nodes"]:
        enabled = (
            nodes[name].run("systemctl is-enabled airflow_ha-pgbackrest-backup-full.timer").stdout.strip()
        )
        if name == pgb["repo"]:
            assert enabled == "enabled", f"full backup timer on {name}: {enabled}"
            assert nodes[name].service("airflow_ha-pgbackrest-backup-diff.timer").is_running
        else:
            assert enabled != "enabled", f"a backup timer on {name} as well: backups would run twice"


def test_files_are_private(nodes, pgb):
    b = pgb["b"]
    tls = b["tls"]["dir"].rstrip("/")
    for name in pgb["nodes"]:
        conf = nodes[name].file(b["config_file"])
        assert (conf.user, conf.group, conf.mode) == ("root", "postgres", 0o640), (
            f"{b['config_file']} on {name}"
        )
        key = nodes[name].file(f"{tls}/node.key")
        assert (key.user, key.mode) == ("postgres", 0o600), f"{tls}/node.key on {name}"
    repo = nodes[pgb["repo"]].file(b["repo_config_file"])
    assert (repo.user, repo.group, repo.mode) == ("root", "postgres", 0o640)


def test_archiving_settings_follow_the_leader(node_exec, pgb, role_nodes):
    for name in role_nodes("db"):
        res = node_exec(
            name, "runuser -u postgres -- psql -XAtc 'show archive_mode' -c 'show archive_command'"
        )
        mode, command = res.stdout.split()[0], " ".join(res.stdout.split()[1:])
        assert mode == "on" and command == f"pgbackrest --stanza={pgb['stanza']} archive-push %p", (
            name,
            res.stdout,
        )


def test_no_secret_in_process_arguments(node_exec, ah, pgb):
    secrets = [ah["secrets"].get(k) for k in ("pgbackrest_cipher_pass", "pgbackrest_s3_key_secret")]
    for name in pgb["nodes"]:
        ps = node_exec(name, "ps -eo args").stdout
        assert not any(s and s in ps for s in secrets), f"a pgBackRest secret in ps on {name}"
