"""
Check and unit-test the formula's Prometheus alert rules with promtool.

Why a script: the rules are a Jinja template (thresholds from
monitoring:alerts); promtool needs plain files. This renders
airflow_ha/monitoring/files/rules/airflow_ha.yml.jinja with
parameters/defaults.yaml's alerts (backups on, so every rule is there) into a
temporary folder next to a copy of test/promtool/*.yml, then runs
``promtool check rules`` and ``promtool test rules``. promtool comes from
Debian's ``prometheus`` package: PROMTOOL, else ``promtool`` on PATH, else the
package is fetched with ``apt-get download`` and unpacked (``dpkg-deb -x``)
under ~/.cache/airflow_ha/promtool (nothing is installed on the host).

    python3 test/tools/promtool_rules.py      (make rules; part of make test-fast)
"""

import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

import jinja2
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "airflow_ha/monitoring/files/rules/airflow_ha.yml.jinja"
TESTS = ROOT / "test/promtool"
CACHE = pathlib.Path(os.environ.get("XDG_CACHE_HOME", pathlib.Path.home() / ".cache")) / "airflow_ha/promtool"


def render(backups=True):
    """The rules file as Salt renders it with the default thresholds."""
    alerts = yaml.safe_load((ROOT / "airflow_ha/parameters/defaults.yaml").read_text())["monitoring"][
        "alerts"
    ]
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    return env.from_string(TEMPLATE.read_text()).render(alerts=alerts, backups=backups)


def promtool():
    found = os.environ.get("PROMTOOL") or shutil.which("promtool")
    if found:
        return found
    binary = CACHE / "usr/bin/promtool"
    if not binary.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(["apt-get", "download", "prometheus"], cwd=tmp, check=True, capture_output=True)
            (deb,) = pathlib.Path(tmp).glob("prometheus_*.deb")
            subprocess.run(["dpkg-deb", "-x", str(deb), str(CACHE)], check=True)
    return str(binary)


def main():
    tool = promtool()
    with tempfile.TemporaryDirectory() as tmp:
        rules = pathlib.Path(tmp) / "airflow_ha.yml"
        rules.write_text(render())
        tests = []
        for test in sorted(TESTS.glob("*.yml")):
            shutil.copy(test, tmp)
            tests.append(str(pathlib.Path(tmp) / test.name))
        check = subprocess.run([tool, "check", "rules", str(rules)], check=False)
        unit = subprocess.run([tool, "test", "rules", *tests], check=False)
    return 1 if check.returncode or unit.returncode else 0


if __name__ == "__main__":
    sys.exit(main())
