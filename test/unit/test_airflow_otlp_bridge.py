"""airflow_ha/monitoring/files/airflow-otlp-bridge.py: the real OpenTelemetry
SDK with its OTLP/HTTP exporter (what Airflow's otel_on uses) pushes to the
bridge on loopback; its /metrics answers in Prometheus' format with the
attributes as labels, counters summed over processes and never going down."""

import importlib.machinery
import importlib.util
import pathlib
import socket
import urllib.request

import pytest

pytest.importorskip("opentelemetry.exporter.otlp.proto.http.metric_exporter")
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter  # noqa: E402
from opentelemetry.sdk.metrics import MeterProvider  # noqa: E402
from opentelemetry.sdk.metrics.export import InMemoryMetricReader  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture
def bridge():
    path = ROOT / "airflow_ha" / "monitoring" / "files" / "airflow-otlp-bridge.py"
    loader = importlib.machinery.SourceFileLoader("airflow_otlp_bridge", str(path))
    spec = importlib.util.spec_from_loader("airflow_otlp_bridge", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    ports = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    servers = mod.serve(f"127.0.0.1:{ports[0]}", f"127.0.0.1:{ports[1]}")
    yield mod, ports
    for server in servers:
        server.shutdown()
        server.server_close()


def push(port, record):
    """One Airflow-like process: record() on a meter, then one OTLP export."""
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    record(provider.get_meter("airflow"))
    exporter = OTLPMetricExporter(endpoint=f"http://127.0.0.1:{port}/v1/metrics")
    result = exporter.export(reader.get_metrics_data())
    provider.shutdown()
    return result


def scrape(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        return resp.read().decode()


def test_counters_gauges_histograms_with_labels(bridge):
    _, (otlp, metrics) = bridge

    def scheduler(meter):
        meter.create_counter("airflow.scheduler_heartbeat").add(3)
        meter.create_counter("airflow.ti_successes").add(2, {"dag_id": "etl", "task_id": "load"})
        meter.create_up_down_counter("airflow.executor.open_slots").add(14)
        meter.create_histogram("airflow.dagrun.duration.success").record(2.5, {"dag_id": "etl"})

    assert push(otlp, scheduler).name == "SUCCESS"
    text = scrape(metrics)
    assert "# TYPE airflow_scheduler_heartbeat_total counter\nairflow_scheduler_heartbeat_total 3\n" in text
    assert 'airflow_ti_successes_total{dag_id="etl",task_id="load"} 2' in text
    assert "# TYPE airflow_executor_open_slots gauge\nairflow_executor_open_slots 14\n" in text
    assert 'airflow_dagrun_duration_success_count{dag_id="etl"} 1' in text
    assert 'airflow_dagrun_duration_success_sum{dag_id="etl"} 2.5' in text


def test_two_processes_add_up_and_a_finished_one_is_kept(bridge):
    _, (otlp, metrics) = bridge
    push(otlp, lambda m: m.create_counter("airflow.ti_successes").add(5, {"dag_id": "a"}))
    push(otlp, lambda m: m.create_counter("airflow.ti_successes").add(7, {"dag_id": "a"}))
    assert 'airflow_ti_successes_total{dag_id="a"} 12' in scrape(metrics)
    push(otlp, lambda m: m.create_counter("airflow.big").add(123456789))
    assert "airflow_big_total 123456789\n" in scrape(metrics)


def test_garbage_is_refused(bridge):
    _, (otlp, metrics) = bridge
    req = urllib.request.Request(
        f"http://127.0.0.1:{otlp}/v1/metrics", data=b"\xff\xfe not protobuf", method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=5)
    assert err.value.code == 400
    assert scrape(metrics) == "\n"
