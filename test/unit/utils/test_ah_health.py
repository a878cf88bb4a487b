"""_utils/ah_health.py: HAProxy's stat CSV, the dag-processor's argv, and
Prometheus' text format."""

import pytest
from testlib import ROOT, load_module

ah_health = load_module("ah_health", "utils")
DATA = ROOT / "test" / "unit" / "data" / "health"


def test_haproxy_csv_rows_by_header():
    rows = ah_health.parse_haproxy_csv((DATA / "haproxy_show_stat.csv").read_text())
    primary = {r["svname"]: r["status"] for r in rows if r["pxname"] == "postgres_primary"}
    assert primary == {"FRONTEND": "OPEN", "node1": "DOWN", "node2": "UP", "node3": "DOWN", "BACKEND": "UP"}


def test_haproxy_csv_without_header_is_empty():
    assert ah_health.parse_haproxy_csv("Unknown command\n") == []
    assert ah_health.parse_haproxy_csv("") == []


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["/opt/airflow/venv/bin/python3", "/opt/airflow/venv/bin/airflow", "dag-processor", ""], True),
        (["/opt/airflow/venv/bin/python3.11", "/opt/airflow/venv/bin/airflow", "dag-processor"], True),
        (
            [
                "/bin/bash",
                "/usr/local/lib/airflow_ha/airflow-locked-run",
                "airflow-ha/airflow/dag-processor",
                "10",
                "--",
                "/opt/airflow/venv/bin/airflow",
                "dag-processor",
            ],
            False,
        ),
        (["/opt/airflow/venv/bin/python3", "/opt/airflow/venv/bin/airflow", "scheduler"], False),
        (["etcdctl", "lock", "airflow-ha/airflow/dag-processor"], False),
        ([], False),
    ],
)
def test_is_dag_processor(argv, expected):
    assert ah_health.is_dag_processor(argv) is expected


def test_metrics_text_groups_by_name_with_help_and_type():
    text = ah_health.metrics_text(
        [
            ("airflow_ha_csync2_dirty_files", {"node": "node1"}, 2),
            ("airflow_ha_up", {}, 1),
            ("airflow_ha_csync2_dirty_files", {"node": 'we"ird'}, 0),
        ],
        {"airflow_ha_up": "the exporter ran"},
    )
    assert text == (
        "# HELP airflow_ha_csync2_dirty_files airflow_ha_csync2_dirty_files\n"
        "# TYPE airflow_ha_csync2_dirty_files gauge\n"
        'airflow_ha_csync2_dirty_files{node="node1"} 2\n'
        'airflow_ha_csync2_dirty_files{node="we\\"ird"} 0\n'
        "# HELP airflow_ha_up the exporter ran\n"
        "# TYPE airflow_ha_up gauge\n"
        "airflow_ha_up 1\n"
    )


def test_metrics_text_keeps_full_precision():
    text = ah_health.metrics_text([("t", {}, 1796192000.25), ("big", {}, 123456789)])
    assert "t 1796192000.25\n" in text and "big 123456789\n" in text


def test_metrics_text_refuses_bad_names():
    with pytest.raises(ValueError, match="bad metric"):
        ah_health.metrics_text([("bad-name", {}, 1)])
    with pytest.raises(ValueError, match="bad metric"):
        ah_health.metrics_text([("ok_name", {"bad-label": "x"}, 1)])


def test_dag_processor_running_reads_proc(tmp_path):
    """The /proc scan the runner and the metrics script share: the real
    processor counts, its lock wrapper does not."""
    wrapper = tmp_path / "10"
    wrapper.mkdir()
    (wrapper / "cmdline").write_bytes(
        b"bash\0/usr/local/lib/airflow_ha/airflow-locked-run\0x\0--\0airflow\0dag-processor\0"
    )
    (tmp_path / "self").mkdir()
    assert ah_health.dag_processor_running(str(tmp_path)) is False
    proc = tmp_path / "11"
    proc.mkdir()
    (proc / "cmdline").write_bytes(
        b"/opt/airflow/venv/bin/python3\0/opt/airflow/venv/bin/airflow\0dag-processor\0"
    )
    assert ah_health.dag_processor_running(str(tmp_path)) is True
