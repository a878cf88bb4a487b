"""Render tier: the whole airflow_ha tree renders, masterless, for every node of
pillar.example and each supported OS, with the real Salt loader and the repo's
_modules/_states. Catches Jinja/YAML errors, bad requisites and state IDs."""

import copy
import json
import pathlib
import subprocess
import sys
import urllib.parse

import pytest
import salt.utils.yaml
from testlib import ROOT

SALT_CALL = [sys.executable, "-c", "import sys; from salt.scripts import salt_call; sys.exit(salt_call())"]
EXAMPLE = salt.utils.yaml.safe_load((ROOT / "pillar.example").read_text())

OS_GRAINS = {
    "Debian-12": {"os": "Debian", "os_family": "Debian", "osfinger": "Debian-12", "osmajorrelease": 12},
    "Debian-13": {"os": "Debian", "os_family": "Debian", "osfinger": "Debian-13", "osmajorrelease": 13},
    "Ubuntu-24.04": {"os": "Ubuntu", "os_family": "Debian", "osfinger": "Ubuntu-24.04", "osmajorrelease": 24},
}


LAB = salt.utils.yaml.safe_load((ROOT / "test" / "lab" / "pillar" / "airflow_ha.sls").read_text())


def _variant(name, etcd_tls=None):
    if name == "lab":
        # as labctl writes it by default (LAB_ETCD_TLS=1): its etcd TLS, which pgBackRest reuses
        lab = copy.deepcopy(LAB)
        lab["airflow_ha"]["etcd"] = {"tls": copy.deepcopy(etcd_tls)}
        return lab
    data = copy.deepcopy(EXAMPLE)
    ah = data["airflow_ha"]
    if name == "etcd-tls":
        ah["etcd"]["tls"] = copy.deepcopy(etcd_tls)
    if name == "options-on":
        ah["vip"]["enabled"] = True
        ah["pgbouncer"]["enabled"] = True
        ah["csync2"]["watcher"]["enabled"] = False
        ah["csync2"]["periodic"]["method"] = "cron"
        ah["rabbitmq"]["broker_url_nodes"] = "local"
        ah["time_sync"]["ntp_servers"] = ["ntp.example"]
        ah["proxy"]["apt"] = "http://10.77.0.1:3142"
        ah["proxy"]["pip"].update({"find_links": ["http://10.77.0.1:3141/"], "no_index": True})
    elif name == "airflow-2":
        ah["airflow"]["version"] = "2.11.2"
    elif name == "split-roles":
        for i, node in enumerate(ah["nodes"].values()):
            node["roles"] = ["db", "broker", "worker"] + (
                ["scheduler", "api", "triggerer", "dag_processor", "flower"] if i < 2 else []
            )
    return data


def _render(tmp_path, minion_id, grains, pillar, sls="airflow_ha", virtual="kvm"):
    pillar_dir = tmp_path / "pillar"
    pillar_dir.mkdir(exist_ok=True)
    (pillar_dir / "top.sls").write_text("base:\n  '*':\n    - airflow_ha\n")
    (pillar_dir / "airflow_ha.sls").write_text(json.dumps(pillar))
    conf = tmp_path / "conf"
    conf.mkdir(exist_ok=True)
    (conf / "minion").write_text(
        json.dumps(
            {
                "id": minion_id,
                "file_client": "local",
                "root_dir": str(tmp_path / "root"),
                "file_roots": {"base": [str(ROOT)]},
                "pillar_roots": {"base": [str(pillar_dir)]},
                "module_dirs": [str(ROOT / "_modules")],
                "utils_dirs": [str(ROOT / "_utils")],
                "states_dirs": [str(ROOT / "_states")],
                "grains": dict(grains, virtual=virtual),
                "log_level_logfile": "error",
            }
        )
    )
    proc = subprocess.run(
        [*SALT_CALL, "-c", str(conf), "--local", "--out=json", "--log-level=quiet", "state.show_sls", sls],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return proc


def _states(proc):
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads(proc.stdout)["local"]
    assert isinstance(data, dict), data
    return data


CASES = [
    (node, osf, "example") for osf in ("Debian-12", "Ubuntu-24.04") for node in ("node1", "node2", "node3")
]
CASES += [
    ("node1", "Debian-13", "options-on"),
    ("node2", "Debian-12", "airflow-2"),
    ("node3", "Debian-12", "split-roles"),
    ("node3", "Debian-13", "etcd-tls"),
]


def _secrets(pillar):
    """Every secret value of an airflow_ha pillar: airflow_ha:secrets and the
    etcd and pgBackRest TLS private keys."""
    ah = pillar["airflow_ha"]
    found = [v for v in (ah.get("secrets") or {}).values() if isinstance(v, str)]
    for component in ("etcd", "pgbackrest"):
        for entry in (((ah.get(component) or {}).get("tls") or {}).get("certs") or {}).values():
            if isinstance(entry, dict) and entry.get("key"):
                found.append(entry["key"])
    assert len(found) >= 12, found
    return found


def _assert_no_secret(states, pillar):
    """No secret of the pillar (raw or percent-encoded) in the rendered state
    data: secrets go through *_pillar arguments, templates rendered on the
    minion, or @@pillar:…@@ references that a state resolves."""
    text = json.dumps(states)
    leaks = sorted(
        {
            f"{sid} holds a secret"
            for sid, body in states.items()
            for secret in _secrets(pillar)
            for form in (secret, urllib.parse.quote(secret, safe=""))
            if form in json.dumps(body)
        }
    )
    assert not leaks, leaks
    assert "PRIVATE KEY" not in text


# Every SLS file of the formula (orch/ aside: a runner's), rendered together.
ALL_SLS = sorted(
    ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".init")
    for p in (ROOT / "airflow_ha").rglob("*.sls")
    if "orch" not in p.parts
)
SECRET_CASES = [(node, "Debian-12", v) for v in ("options-on", "lab") for node in ("node1", "node2", "node3")]
SECRET_CASES += [("node1", "Debian-12", "airflow-2"), ("node2", "Debian-13", "etcd-tls")]


@pytest.mark.parametrize(
    ("node", "osfinger", "variant"), SECRET_CASES, ids=[f"{n}-{o}-{v}" for n, o, v in SECRET_CASES]
)
def test_no_secret_in_any_rendered_sls(tmp_path, etcd_tls, node, osfinger, variant):
    pillar = _variant(variant, etcd_tls)
    states = _states(_render(tmp_path, node, OS_GRAINS[osfinger], pillar, sls=",".join(ALL_SLS)))
    assert "airflow_ha-postgresql-airflow-role" in states and "airflow_ha-airflow-config-common" in states
    if variant == "options-on":
        assert "airflow_ha-pgbouncer-userlist" in states
    if node == "node1":  # the first api node manages the admin user
        assert "airflow_ha-airflow-admin-user" in states
    _assert_no_secret(states, pillar)


@pytest.mark.parametrize(("node", "osfinger", "variant"), CASES, ids=[f"{n}-{o}-{v}" for n, o, v in CASES])
def test_whole_tree_renders(tmp_path, etcd_tls, node, osfinger, variant):
    pillar = _variant(variant, etcd_tls)
    states = _states(_render(tmp_path, node, OS_GRAINS[osfinger], pillar))
    _assert_no_secret(states, pillar)
    assert "airflow_ha-validate-pillar" in states
    bad_ids = [sid for sid in states if not sid.startswith("airflow_ha-")]
    assert not bad_ids, f"state IDs must be airflow_ha-<component>-<thing>: {bad_ids}"
    # etcdctl for the dag-processor lock wherever a 3.x dag-processor may run,
    # and for the API server's restart in turn
    locker = variant != "airflow-2" and not (variant == "split-roles" and node == "node3")
    in_turn = any(sid.startswith("airflow_ha-airflow-restart-in-turn-") for sid in states)
    assert ("airflow_ha-airflow-etcd-client" in states) == (locker or in_turn)
    tls_ids = [sid for sid in states if "-tls-" in sid]
    assert bool(tls_ids) == (variant == "etcd-tls"), tls_ids  # etcd TLS is off by default
    if "airflow_ha-etcd-wait-healthy" in states:
        scheme = "https" if variant == "etcd-tls" else "http"
        assert (
            _args(states["airflow_ha-etcd-wait-healthy"]["airflow_ha_etcd"])["name"]
            == f"{scheme}://127.0.0.1:2379"
        )


# Renders file templates with the minion config _render wrote (one process, several templates).
RENDER_TEMPLATES = """
import json, sys
import salt.client, salt.config
caller = salt.client.Caller(mopts=salt.config.minion_config(sys.argv[1]))
out = {}
for dest, (source, context) in json.loads(sys.argv[2]).items():
    assert caller.cmd("cp.get_template", source, dest, **context) == dest, dest
    out[dest] = open(dest).read()
print(json.dumps(out))
"""


def render_files(tmp_path, wanted):
    """{file name: text} of file templates rendered with the minion config
    _render wrote in ``tmp_path``; ``wanted``: {destination: (source, context)}."""
    proc = subprocess.run(
        [sys.executable, "-c", RENDER_TEMPLATES, str(tmp_path / "conf" / "minion"), json.dumps(wanted)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return {pathlib.Path(k).name: v for k, v in json.loads(proc.stdout.splitlines()[-1]).items()}


def _args(body):
    return {k: v for item in body for k, v in (item.items() if isinstance(item, dict) else [])}


def test_etcd_tls_every_client_follows(tmp_path, etcd_tls):
    """etcd:tls:enabled on every node: etcd serves https with client and peer
    cert auth, and every etcd client (the wait state, Patroni, the
    dag-processor's etcdctl) uses https with the CA and a certificate; each
    key is a 0600 copy owned by its reader, taken from pillar by path."""
    pillar = _variant("etcd-tls", etcd_tls)
    states = _states(_render(tmp_path, "node2", OS_GRAINS["Debian-12"], pillar))
    text = json.dumps(states)
    assert "PRIVATE KEY" not in text, "a private key is in the rendered state data"
    tls_dir = "/etc/etcd/airflow-ha-tls"
    owners = {
        "airflow_ha-etcd-tls-key": ("etcd", "etcd.key"),
        "airflow_ha-postgresql-etcd-tls-key": ("postgres", "patroni.key"),
        "airflow_ha-airflow-etcd-tls-key": ("airflow", "airflow.key"),
    }
    for sid, (user, name) in owners.items():
        a = _args(states[sid]["file"])
        assert a["name"] == f"{tls_dir}/{name}"
        assert (a["user"], a["mode"], a["show_changes"]) == (user, "0600", False), sid
        assert a["contents_pillar"] == "airflow_ha:etcd:tls:certs:node2:key"
    for sid, name, path in (
        ("airflow_ha-etcd-tls-ca", "ca.crt", "airflow_ha:etcd:tls:ca_cert"),
        ("airflow_ha-etcd-tls-cert", "node.crt", "airflow_ha:etcd:tls:certs:node2:cert"),
    ):
        a = _args(states[sid]["file"])
        assert (a["name"], a["mode"], a["contents_pillar"]) == (f"{tls_dir}/{name}", "0644", path)
    restart = _args(states["airflow_ha-etcd-restart-on-config"]["cmd"])
    assert {"file": "airflow_ha-etcd-tls-key"} in restart["onchanges"]
    assert {"file": "airflow_ha-etcd-tls-ca"} in restart["onchanges"]
    wait = _args(states["airflow_ha-etcd-wait-healthy"]["airflow_ha_etcd"])
    assert wait["name"] == "https://127.0.0.1:2379"
    assert (wait["cacert"], wait["cert"], wait["key"]) == (
        f"{tls_dir}/ca.crt",
        f"{tls_dir}/node.crt",
        f"{tls_dir}/etcd.key",
    )
    patroni_watch = _args(states["airflow_ha-postgresql-patroni-service"]["service"])["watch"]
    assert {"file": "airflow_ha-postgresql-etcd-tls-key"} in patroni_watch
    dp_watch = _args(states["airflow_ha-airflow-service-dag-processor"]["service"])["watch"]
    assert {"file": "airflow_ha-airflow-etcd-tls-key"} in dp_watch

    def template(sid):
        a = _args(states[sid]["file"])
        return a["source"], a.get("context") or {}

    wanted = {
        str(tmp_path / "etcd"): template("airflow_ha-etcd-config"),
        str(tmp_path / "etcd_initial"): template("airflow_ha-etcd-initial"),
        str(tmp_path / "patroni"): template("airflow_ha-postgresql-patroni-config"),
        str(tmp_path / "unit"): template("airflow_ha-airflow-unit-dag-processor"),
    }
    files = render_files(tmp_path, wanted)
    etcd = dict(line.split("=", 1) for line in files["etcd"].splitlines() if "=" in line)
    assert etcd["ETCD_LISTEN_CLIENT_URLS"] == '"https://10.77.0.12:2379,https://127.0.0.1:2379"'
    assert (
        etcd["ETCD_LISTEN_PEER_URLS"]
        == etcd["ETCD_INITIAL_ADVERTISE_PEER_URLS"]
        == '"https://10.77.0.12:2380"'
    )
    initial = dict(line.split("=", 1) for line in files["etcd_initial"].splitlines() if "=" in line)
    assert initial["ETCD_INITIAL_CLUSTER"].count("=https://") == 3
    assert "http://" not in files["etcd"]
    for prefix in ("ETCD_", "ETCD_PEER_"):
        assert etcd[f"{prefix}CERT_FILE"] == f'"{tls_dir}/node.crt"'
        assert etcd[f"{prefix}KEY_FILE"] == f'"{tls_dir}/etcd.key"'
        assert etcd[f"{prefix}TRUSTED_CA_FILE"] == f'"{tls_dir}/ca.crt"'
        assert etcd[f"{prefix}CLIENT_CERT_AUTH"] == '"true"'
    etcd3 = salt.utils.yaml.safe_load(files["patroni"])["etcd3"]
    assert etcd3 == {
        "hosts": ["127.0.0.1:2379"],
        "use_proxies": True,
        "protocol": "https",
        "cacert": f"{tls_dir}/ca.crt",
        "cert": f"{tls_dir}/node.crt",
        "key": f"{tls_dir}/patroni.key",
    }
    env = [
        line.split("=", 1)[1] for line in files["unit"].splitlines() if line.startswith("Environment=ETCDCTL")
    ]
    assert env == [
        "ETCDCTL_API=3",
        "ETCDCTL_ENDPOINTS=https://10.77.0.11:2379,https://10.77.0.12:2379,https://10.77.0.13:2379",
        f"ETCDCTL_CACERT={tls_dir}/ca.crt",
        f"ETCDCTL_CERT={tls_dir}/node.crt",
        f"ETCDCTL_KEY={tls_dir}/airflow.key",
    ]


def test_etcd_and_patroni_start_after_the_network_and_restart_on_failure(tmp_path):
    """Both bind the node's address: each db node lays the boot drop-in on
    Debian's unit (after network-online.target, Restart=on-failure) and
    reloads systemd only when it changed; the lab tier proves the restart
    (test/integration/test_boot_restart.py)."""
    states = _states(_render(tmp_path, "node2", OS_GRAINS["Debian-12"], EXAMPLE))
    for sid, unit, reload in (
        ("airflow_ha-etcd-boot-dropin", "etcd", "airflow_ha-etcd-daemon-reload"),
        (
            "airflow_ha-postgresql-patroni-boot-dropin",
            "patroni",
            "airflow_ha-postgresql-patroni-daemon-reload",
        ),
    ):
        a = _args(states[sid]["file"])
        assert a["name"] == f"/etc/systemd/system/{unit}.service.d/airflow-ha-boot.conf"
        assert a["source"] == "salt://airflow_ha/common/files/boot-dropin.conf"
        assert {"file": sid} in _args(states[reload]["cmd"])["onchanges"]
    text = (ROOT / "airflow_ha" / "common" / "files" / "boot-dropin.conf").read_text()
    for line in (
        "After=network-online.target",
        "Wants=network-online.target",
        "Restart=on-failure",
        "RestartSec=5",
    ):
        assert line in text.splitlines(), f"boot-dropin.conf lacks {line}"


def test_bad_pillar_renders_only_the_failing_check(tmp_path):
    pillar = _variant("example")
    pillar["airflow_ha"]["secrets"]["jwt_secret"] = "short"
    states = _states(_render(tmp_path, "node1", OS_GRAINS["Debian-12"], pillar))
    assert list(states) == ["airflow_ha-validate-pillar"]


def test_unknown_minion_renders_only_the_failing_check(tmp_path):
    states = _states(_render(tmp_path, "node7", OS_GRAINS["Debian-12"], _variant("example")))
    assert list(states) == ["airflow_ha-validate-pillar"]


SALT_RUN = [sys.executable, "-c", "import sys; from salt.scripts import salt_run; sys.exit(salt_run())"]


def _orch_stages(tmp_path, pillar, raw=False, synced=True, sls="airflow_ha.orch"):
    pillar_dir = tmp_path / "pillar"
    pillar_dir.mkdir()
    (pillar_dir / "top.sls").write_text("base:\n  '*':\n    - airflow_ha\n")
    (pillar_dir / "airflow_ha.sls").write_text(json.dumps(pillar))
    root = tmp_path / "master"
    (root / "cache" / "proc").mkdir(parents=True)
    conf = {
        "root_dir": str(root),
        "cachedir": str(root / "cache"),
        "pki_dir": str(root / "pki"),
        "log_file": str(root / "master.log"),
        "file_roots": {"base": [str(ROOT)]},
        "pillar_roots": {"base": [str(pillar_dir)]},
    }
    if synced:  # what salt-run saltutil.sync_all gives a real master
        conf.update(module_dirs=[str(ROOT / "_modules")], utils_dirs=[str(ROOT / "_utils")])
    (root / "master").write_text(json.dumps(conf))
    proc = subprocess.run(
        [
            *SALT_RUN,
            "-c",
            str(root),
            "--out=json",
            "--log-level=quiet",
            "state.orchestrate_show_sls",
            sls,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.JSONDecoder().raw_decode(proc.stdout)[0]
    if len(data) == 1 and not next(iter(data)).startswith("airflow_ha-"):
        data = next(iter(data.values()))
    if raw:
        return data
    args = {
        sid: {k: v for item in body["salt"] if isinstance(item, dict) for k, v in item.items()}
        for sid, body in data.items()
    }
    return {
        sid: (a.get("sls", a.get("name")), a["tgt"])
        for sid, a in sorted(args.items(), key=lambda kv: kv[1]["order"])
    }


def test_orchestration_stages_follow_roles(tmp_path):
    stages = _orch_stages(tmp_path, _variant("split-roles"))
    order = [sid.removeprefix("airflow_ha-orch-") for sid in stages]
    assert order == [
        "validate",
        "common",
        "etcd",
        "postgresql",
        "haproxy",
        "rabbitmq",
        "csync2",
        "airflow-install",
        "airflow-db",
        "airflow",
        "health",
    ]
    assert stages["airflow_ha-orch-etcd"] == (["airflow_ha.etcd"], ["node1", "node2", "node3"])
    options = (
        _orch_stages(tmp_path / "on", _variant("options-on")) if (tmp_path / "on").mkdir() is None else None
    )
    assert "airflow_ha-orch-keepalived" in options and "airflow_ha-orch-pgbouncer" in options


def test_orchestration_targets_only_role_holders(tmp_path):
    pillar = _variant("example")
    pillar["airflow_ha"]["nodes"]["node4"] = {"address": "10.77.0.14", "roles": ["worker"]}
    stages = _orch_stages(tmp_path, pillar)
    assert stages["airflow_ha-orch-postgresql"][1] == ["node1", "node2", "node3"]
    assert stages["airflow_ha-orch-rabbitmq"][1] == ["node1", "node2", "node3"]
    assert stages["airflow_ha-orch-airflow"][1] == ["node1", "node2", "node3", "node4"]
    # one-time jobs (schema, admin user) run on one node: the first api node
    assert stages["airflow_ha-orch-airflow-db"] == (["airflow_ha.airflow.db"], "node1")


def test_orchestration_roles_default_from_the_settings(tmp_path):
    """A node without `roles` holds all_roles, as settings() says: the orch
    no longer restates that default in Jinja."""
    pillar = _variant("example")
    nodes = pillar["airflow_ha"]["nodes"]
    nodes["node1"]["roles"] = ["db", "broker", "worker", "scheduler", "triggerer", "dag_processor"]
    nodes["node2"].pop("roles", None)
    nodes["node3"]["roles"] = ["db", "worker"]
    stages = _orch_stages(tmp_path, pillar)
    assert stages["airflow_ha-orch-rabbitmq"][1] == ["node1", "node2"]
    assert stages["airflow_ha-orch-etcd"][1] == ["node1", "node2", "node3"]
    assert stages["airflow_ha-orch-airflow-db"][1] == "node2"  # the only api node


def test_orchestration_of_the_airflow_layer_uses_the_one_time_node(tmp_path):
    """airflow_ha.orch.airflow reads the same cluster view as airflow_ha.orch:
    the schema and admin user from settings' one-time node (the first api
    node), not the first node of the pillar."""
    pillar = _variant("example")
    pillar["airflow_ha"]["nodes"]["node1"]["roles"] = ["db", "broker", "worker", "scheduler"]
    stages = _orch_stages(tmp_path, pillar, sls="airflow_ha.orch.airflow")
    assert stages["airflow_ha-orch-airflow-db"] == (["airflow_ha.airflow.db"], "node2")
    assert stages["airflow_ha-orch-airflow-install"][1] == ["node1", "node2", "node3"]


def test_orchestration_with_a_bad_pillar_fails_first_with_every_problem(tmp_path):
    pillar = _variant("example")
    pillar["airflow_ha"]["rabbitmq"]["partition_handling"] = "pause-minority"
    pillar["airflow_ha"]["postgresql"]["patroni"]["tll"] = 30
    del pillar["airflow_ha"]["secrets"]  # the master's view needs no secrets
    data = _orch_stages(tmp_path, pillar, raw=True)
    assert list(data) == ["airflow_ha-orch-pillar"]
    (body,) = data.values()
    name = next(i["name"] for i in body["test"] if isinstance(i, dict) and "name" in i)
    assert "airflow_ha:rabbitmq:partition_handling: 'pause-minority' is not supported" in name
    assert "airflow_ha:postgresql:patroni:tll: unknown key — did you mean ttl?" in name
    assert "secrets" not in name


def test_orchestration_without_the_modules_on_the_master_says_how_to_sync(tmp_path):
    data = _orch_stages(tmp_path, _variant("example"), raw=True, synced=False)
    assert list(data) == ["airflow_ha-orch-modules"]
    assert "salt-run saltutil.sync_all" in json.dumps(data)


def test_api_servers_restart_in_turn(tmp_path, etcd_tls):
    """A changed config, venv or unit queues the API server for a restart in
    turn (an etcd lock, health before the next node) instead of a watch that
    restarts every node's API server at once; other units keep their watch."""
    pillar = _variant("etcd-tls", etcd_tls)
    states = _states(_render(tmp_path, "node2", OS_GRAINS["Debian-12"], pillar))
    api = _args(states["airflow_ha-airflow-service-api-server"]["service"])
    assert "watch" not in api
    queued = _args(states["airflow_ha-airflow-restart-queued-api-server"]["cmd"])
    assert queued["onlyif"] == "systemctl is-active -q airflow-api-server"
    assert {"airflow": "airflow_ha-airflow-config-common"} in queued["onchanges"]
    assert {"pip": "airflow_ha-airflow-package"} in queued["onchanges"]
    assert {"service": "airflow_ha-airflow-service-api-server"} in queued["require_in"]
    turn = _args(states["airflow_ha-airflow-restart-in-turn-api-server"]["cmd"])
    marker = "/var/lib/airflow_ha/restart-pending-api"
    assert turn["name"].split() == [
        "/usr/local/lib/airflow_ha/airflow-restart-in-turn",
        "airflow-ha/airflow/api-restart",
        "airflow-api-server",
        "http://10.77.0.12:8080/api/v2/monitor/health",
        marker,
        "300",
        "http://10.77.0.11:8080/api/v2/monitor/health",
        "http://10.77.0.13:8080/api/v2/monitor/health",
    ]
    assert turn["onlyif"] == f"test -e {marker}"
    env = {k: v for item in turn["env"] for k, v in item.items()}
    assert env["ETCDCTL_ENDPOINTS"].count("https://") == 3
    assert env["ETCDCTL_KEY"] == "/etc/etcd/airflow-ha-tls/airflow.key"
    # the scheduler still restarts on its own watch
    assert "watch" in _args(states["airflow_ha-airflow-service-scheduler"]["service"])


def test_airflow_units_first_start_waits_for_the_dag_folder(tmp_path, etcd_tls):
    """A node whose Airflow units have never run (added, or rebuilt blank)
    starts them only once its peers pushed the DAG folder; a node where any
    of them runs skips the wait."""
    pillar = _variant("etcd-tls", etcd_tls)
    states = _states(_render(tmp_path, "node2", OS_GRAINS["Debian-12"], pillar))
    gate = _args(states["airflow_ha-airflow-dags-caught-up"]["csync2"])
    assert gate["timeout"] == 300
    units = gate["unless"].split()[3:]
    assert gate["unless"].startswith("systemctl is-active -q ") and "airflow-scheduler" in units
    assert {"service": "airflow_ha-csync2-socket"} in gate["require"]
    running = [
        k
        for k, v in states.items()
        if k.startswith("airflow_ha-airflow-service-") and "running" in v.get("service", [])
    ]
    assert running, "no Airflow unit runs on node2"
    for sid in running:
        assert {"csync2": "airflow_ha-airflow-dags-caught-up"} in _args(states[sid]["service"])["require"], (
            sid
        )
    assert sorted(units) == sorted(_args(states[s]["service"])["name"] for s in running)
