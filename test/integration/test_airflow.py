"""Airflow: every unit the roles ask for is active (and the others are not),
one dag-processor in the cluster, the API and Flower answer, the pillar admin
logs in through every API server, a headless browser ends on the UI's login
form, every scheduler is alive, a DAG with 8
parallel tasks succeeds with tasks on several nodes' workers, a re-apply
changes nothing, and no pillar secret shows in ps or journald."""

import json
import shutil
import subprocess
import tempfile
import time

import pytest

ROLE_UNITS = {
    "api": "airflow-api-server",
    "scheduler": "airflow-scheduler",
    "triggerer": "airflow-triggerer",
    "worker": "airflow-worker",
    "flower": "airflow-flower",
    "dag_processor": "airflow-dag-processor",
}
# Airflow 2.x: a webserver instead of the api-server, no standalone dag-processor.
ROLE_UNITS_2 = dict(ROLE_UNITS, api="airflow-webserver", dag_processor=None)
CHECK_DAG = "airflow_ha_check"


def major(ah):
    return int(str(ah["airflow"]["version"]).split(".")[0])


def role_unit(ah, role):
    return (ROLE_UNITS if major(ah) >= 3 else ROLE_UNITS_2)[role]


@pytest.fixture(scope="module")
def airflow_nodes(nodes, ah):
    venv = ah["airflow"]["venv"]
    missing = [n for n in nodes if not nodes[n].file(f"{venv}/bin/airflow").exists]
    if missing:
        pytest.skip(f"Airflow is not installed on {', '.join(missing)} (not built yet)")
    return list(nodes)


def airflow_cli(ah):
    af = ah["airflow"]
    return (
        f"runuser -u {af['user']} -- env AIRFLOW_HOME={af['home']} PYTHONWARNINGS=ignore "
        f"AIRFLOW__LOGGING__LOGGING_LEVEL=ERROR {af['venv']}/bin/airflow"
    )


@pytest.mark.parametrize("role", sorted(ROLE_UNITS))
def test_units_follow_roles(nodes, airflow_nodes, role_nodes, ah, role):
    unit = role_unit(ah, role)
    if unit is None:
        for name in airflow_nodes:  # the 3.x unit must not linger after a switch
            assert not nodes[name].service(ROLE_UNITS[role]).is_running, f"{ROLE_UNITS[role]} on {name}"
        return
    wanted = role_nodes(role)
    for name in airflow_nodes:
        svc = nodes[name].service(unit)
        if name in wanted:
            assert svc.is_running and svc.is_enabled, f"{unit} not active on {name}"
        else:
            assert not svc.is_running, f"{unit} runs on {name} without the {role} role"


def test_exactly_one_dag_processor(nodes, airflow_nodes, role_nodes, ah, wait_for):
    if major(ah) < 3:
        pytest.skip("Airflow 2.x: the schedulers parse DAGs (no standalone dag-processor)")

    def running():
        return [
            n for n in role_nodes("dag_processor")
            # the processor itself, not the airflow-locked-run wrapper waiting for the lock
            if nodes[n].run("pgrep -f 'bin/python[0-9.]* .*/airflow dag-processor'").rc == 0
        ]  # fmt: skip

    holders = wait_for(running, timeout=30)
    assert len(holders) == 1, f"dag-processor runs on {holders}"


def test_api_health(nodes, airflow_nodes, role_nodes, ah, address, wait_for):
    """An operator gives a just-(re)started api-server a while to listen."""
    port = ah["airflow"]["api_port"]
    path = "/api/v2/monitor/health" if major(ah) >= 3 else "/health"
    for name in role_nodes("api"):
        url = f"http://{address(name)}:{port}{path}"
        res = wait_for(lambda n=name, u=url: (r := nodes[n].run(f"curl -sf {u}")).rc == 0 and r, 180, 3)
        assert res, f"api-server on {name} does not answer {url}"
        health = json.loads(res.stdout)
        assert health["metadatabase"]["status"] == "healthy", f"{name}: {health}"
        assert health["scheduler"]["status"] == "healthy", f"{name}: {health}"


def chromium_dom(url, timeout=90):
    """The DOM of ``url`` after its scripts ran, from Debian's headless
    chromium on this host (labctl verify installs it). Names resolve to
    nothing but the one address asked (--host-resolver-rules) and background
    networking is off, so the browser sends traffic to the lab node only."""
    host = url.split("//", 1)[1].split(":")[0].split("/")[0]
    with tempfile.TemporaryDirectory(prefix="airflow-ha-chromium-") as profile:
        proc = subprocess.run(
            ["chromium", "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--disable-default-apps", "--disable-extensions",
             f"--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE {host}", f"--user-data-dir={profile}",
             "--virtual-time-budget=20000", "--dump-dom", url],
            capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip
    return proc.stdout


def test_ui_login_page_loads_in_a_browser(airflow_nodes, role_nodes, ah, address):
    """The UI as a user meets it: a real browser loads each API server's root
    page, runs the UI's scripts (Airflow 3's single-page app asks its API,
    is told to log in) and ends on the login form."""
    if not shutil.which("chromium"):
        pytest.skip("no chromium on this host (labctl verify installs Debian's package)")
    for name in role_nodes("api"):
        url = f"http://{address(name)}:{ah['airflow']['api_port']}/"
        dom = chromium_dom(url)
        assert 'name="username"' in dom and 'type="password"' in dom, (
            f"{name}: {url} did not end on a login form in a browser: {dom[:300]!r}"
        )


def test_flower_health(nodes, airflow_nodes, role_nodes, ah, address, wait_for):
    port = ah["airflow"]["flower_port"]
    for name in role_nodes("flower"):
        url = f"http://{address(name)}:{port}/healthcheck"
        res = wait_for(lambda n=name, u=url: (r := nodes[n].run(f"curl -sf {u}")).rc == 0 and r, 180, 3)
        assert res and "OK" in res.stdout, f"flower on {name} does not answer {url}"


def test_flower_asks_for_the_admin_login(nodes, node_exec, airflow_nodes, role_nodes, ah, address):
    """Flower can stop workers: its pages need the Airflow admin's login
    (basic auth; curl reads it from stdin, never argv)."""
    af = ah["airflow"]
    login = f"{af['admin']['username']}:{ah['secrets']['admin_password']}"
    for name in role_nodes("flower"):
        url = f"http://{address(name)}:{af['flower_port']}/workers"
        code = node_exec(name, f"curl -s -m 30 -o /dev/null -w '%{{http_code}}' {url}").stdout
        assert code == "401", f"Flower on {name} answers {url} without a login: {code}"
        code = node_exec(
            name, f"curl -s -m 30 -o /dev/null -w '%{{http_code}}' -K - {url}", stdin=f'user = "{login}"\n'
        ).stdout
        assert code == "200", f"Flower on {name} refuses the admin login: {code}"


def test_config_is_private(nodes, airflow_nodes, ah):
    cfg = f"{ah['airflow']['home']}/airflow.cfg"
    for name in airflow_nodes:
        f = nodes[name].file(cfg)
        if f.exists:
            assert f.mode & 0o007 == 0, f"{cfg} on {name} is world-readable: {oct(f.mode)}"


def test_dag_run_succeeds(nodes, node_exec, airflow_nodes, role_nodes, ah, wait_for):
    """Trigger the formula's check DAG (copied from the repo if the formula did
    not install it) and wait for a successful run."""
    sched = role_nodes("scheduler")[0]
    cli = airflow_cli(ah)
    dags = f"{ah['airflow']['home']}/dags"
    present = nodes[sched].file(f"{dags}/{CHECK_DAG}.py").exists
    if not present:
        src = (pytest.importorskip("pathlib").Path(__file__).parents[2]
               / "airflow_ha/airflow/files/dags/airflow_ha_check.py").read_text()  # fmt: skip
        node_exec(sched, f"cat > {dags}/{CHECK_DAG}.py && chown {ah['airflow']['user']} "
                  f"{dags}/{CHECK_DAG}.py && (csync2 -x || true)", stdin=src)  # fmt: skip
    node_exec(sched, f"{cli} dags reserialize >/dev/null 2>&1; true")
    listed = wait_for(
        lambda: node_exec(sched, f"{cli} dags list -o json 2>/dev/null").stdout.find(CHECK_DAG) >= 0,
        timeout=120, interval=5,
    )  # fmt: skip
    assert listed, f"{CHECK_DAG} never appeared in `airflow dags list`"
    node_exec(sched, f"{cli} dags unpause {CHECK_DAG}")
    res = node_exec(sched, f"{cli} dags trigger {CHECK_DAG} -o json")
    assert res.rc == 0, f"trigger failed: {res.stdout} {res.stderr}"

    def state():
        flag = "" if major(ah) >= 3 else "-d "  # 2.x: list-runs -d DAG_ID
        out = node_exec(sched, f"{cli} dags list-runs {flag}{CHECK_DAG} -o json 2>/dev/null").stdout
        try:
            runs = json.loads(out[out.find("[") :])
        except ValueError:
            return None
        states = [r.get("state") for r in runs]
        return states[0] if states and states[0] in ("success", "failed") else None

    final = wait_for(state, timeout=600, interval=5)
    assert final == "success", f"{CHECK_DAG} run ended {final!r}"


def test_every_scheduler_alive(nodes, node_exec, airflow_nodes, role_nodes, ah):
    cli = airflow_cli(ah)
    for name in role_nodes("scheduler"):
        res = node_exec(name, f"{cli} jobs check --job-type SchedulerJob --local")
        assert res.rc == 0, f"scheduler on {name}: {res.stdout} {res.stderr}"


def test_health_module_everywhere(salt, airflow_nodes):
    """The airflow.health execution function: every enabled unit active and
    its probe (API, scheduler health server, Flower) answering 200."""
    out = salt("node*", "airflow.health", "timeout=10", "--timeout=120")
    for name in airflow_nodes:
        assert out[name]["healthy"] is True, f"{name}: {out[name]}"


def test_admin_logs_in_through_every_api(nodes, node_exec, airflow_nodes, role_nodes, ah, address):
    """POST /auth/token (FAB auth manager) with the pillar admin on each node's
    API server; the password travels on stdin, never argv. 2.x: /api/v1 basic auth
    is not enabled by default, so 2.x only checks the login page."""
    af = ah["airflow"]
    if str(af["version"]).startswith("2."):
        for name in role_nodes("api"):
            res = node_exec(name, f"curl -sf -o /dev/null http://{address(name)}:{af['api_port']}/login/")
            assert res.rc == 0, name
        return
    body = json.dumps({"username": af["admin"]["username"], "password": ah["secrets"]["admin_password"]})
    for name in role_nodes("api"):
        base = f"http://{address(name)}:{af['api_port']}"
        res = node_exec(
            name,
            f"curl -s -m 30 -X POST -H 'Content-Type: application/json' -d @- {base}/auth/token",
            stdin=body,
        )
        token = json.loads(res.stdout or "{}").get("access_token")
        assert token, f"admin login through {name}'s API failed: {res.stdout[:200]}"
        res = node_exec(
            name,
            f"curl -s -m 30 -o /dev/null -w '%{{http_code}}' -H @- {base}/api/v2/dags",
            stdin=f"Authorization: Bearer {token}\n",
        )
        assert res.stdout == "200", f"GET /api/v2/dags with the admin token on {name}: {res.stdout}"


def test_parallel_dag_runs_on_several_nodes(salt, nodes, node_exec, airflow_nodes, role_nodes, ah, wait_for):
    """The check DAG's 8 tasks are spread by Celery over the workers: with more
    than one worker node, task instances report at least two hostnames. Uses
    the airflow execution module (dag_trigger / dag_state) through Salt."""
    sched = role_nodes("scheduler")[0]
    cli = airflow_cli(ah)
    dags = f"{ah['airflow']['home']}/dags"
    if not nodes[sched].file(f"{dags}/{CHECK_DAG}.py").exists:
        pytest.skip("the check DAG is not deployed (test_dag_run_succeeds deploys it)")
    node_exec(sched, f"{cli} dags reserialize >/dev/null 2>&1; true")
    run_id = f"itest-parallel-{int(time.time())}"
    out = salt(sched, "airflow.dag_trigger", CHECK_DAG, f"run_id={run_id}")
    assert out[sched].get("run_id") == run_id, out

    def done():
        st = salt(sched, "airflow.dag_state", CHECK_DAG, run_id)[sched]
        return st if isinstance(st, dict) and st.get("state") in ("success", "failed") else None

    state = wait_for(done, timeout=300, interval=5)
    assert state and state["state"] == "success", f"run {run_id}: {state}"
    hosts = {t["hostname"] for t in state["tasks"] if t["task_id"].startswith("where_")}
    assert len([t for t in state["tasks"] if t["task_id"].startswith("where_")]) == 8
    if len(role_nodes("worker")) > 1:
        assert len(hosts) >= 2, f"all tasks ran on {hosts}"


def test_reapply_changes_nothing(salt, airflow_nodes):
    out = salt("node*", "state.apply", "airflow_ha.airflow", "test=True", "queue=True", "--timeout=900")
    for name in airflow_nodes:
        ret = out[name]
        assert isinstance(ret, dict), f"{name}: {ret}"
        changed = {k.split("_|-")[1]: v["changes"] for k, v in ret.items() if v.get("changes")}
        failed = [k.split("_|-")[1] for k, v in ret.items() if v.get("result") is False]
        assert not changed and not failed, f"{name}: changes {changed} failed {failed}"


def test_no_secret_in_ps_or_journal(nodes, node_exec, airflow_nodes, ah):
    secrets = [str(v) for v in (ah.get("secrets") or {}).values() if v and len(str(v)) >= 6]
    assert secrets
    for name in airflow_nodes:
        text = node_exec(name, "ps -eww -o args; journalctl --no-pager -q -o cat").stdout
        leaked = [f"{s[:4]}..." for s in secrets if s in text]
        assert not leaked, f"pillar secrets visible in ps/journald on {name}: {leaked}"


def test_worker_survives_its_api_server_down(salt, nodes, node_exec, airflow_nodes, role_nodes, ah, wait_for):
    """Workers reach the execution API through the local HAProxy (all API
    servers behind it): with one node's API server stopped, that node's worker
    still runs tasks to success. (2.x workers use the database, not the API:
    the same check with the webserver stopped.)"""
    apis, workers = role_nodes("api"), role_nodes("worker")
    victim = next((n for n in workers if n in apis and n != role_nodes("scheduler")[0]), None)
    if victim is None or len(apis) < 2:
        pytest.skip("needs two API nodes and a worker node with an API server")
    if not nodes[role_nodes("scheduler")[0]].file(f"{ah['airflow']['home']}/dags/{CHECK_DAG}.py").exists:
        pytest.skip("the check DAG is not deployed (test_dag_run_succeeds deploys it)")
    sched = role_nodes("scheduler")[0]
    unit = role_unit(ah, "api")
    node_exec(victim, f"systemctl stop {unit}")
    try:
        run_id = f"itest-apidown-{int(time.time())}"
        salt(sched, "airflow.dag_trigger", CHECK_DAG, f"run_id={run_id}")

        def done():
            st = salt(sched, "airflow.dag_state", CHECK_DAG, run_id)[sched]
            return st if isinstance(st, dict) and st.get("state") in ("success", "failed") else None

        state = wait_for(done, timeout=300, interval=5)
    finally:
        node_exec(victim, f"systemctl start {unit}")
    assert state and state["state"] == "success", f"run {run_id} with {victim}'s API down: {state}"
    on_victim = [t for t in state["tasks"] if t["hostname"] == victim]
    assert on_victim, f"no task ran on {victim} this time: {state['tasks']}"
    assert all(t["state"] == "success" for t in on_victim)
