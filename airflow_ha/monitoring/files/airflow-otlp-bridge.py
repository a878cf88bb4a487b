"""airflow_ha's OTLP -> Prometheus bridge for Airflow's metrics (managed by
Salt, airflow_ha.monitoring; unit airflow_ha-airflow-metrics; runs with the
Airflow venv's python).

    airflow-otlp-bridge --otlp 127.0.0.1:4318 --listen 10.0.0.11:9112

Why this and not another exporter: Debian 12 ships no prometheus-statsd-exporter,
and the Airflow venv has no StatsD client (Airflow's constraints do not pull
the `statsd` package in), so Airflow's StatsD metrics have nowhere to go. It
does have OpenTelemetry (SDK, the OTLP/HTTP exporter, the protobuf messages)
and prometheus_client. PyPI's opentelemetry-exporter-prometheus is a metric
*reader* that must be registered in the process's MeterProvider, which
Airflow builds itself with only its OTLP exporter: using it would mean
patching Airflow. So Airflow runs with `[metrics] otel_on` and pushes OTLP/HTTP
(protobuf) to this small receiver on loopback, which keeps the latest points
and serves them in Prometheus' text format on the node address, with the
points' attributes (dag_id, task_id, ...) as labels.

Mapping: names get `.`/`-` -> `_`; a monotonic sum is a counter (`_total`),
a non-monotonic sum or a gauge a gauge, a histogram (explicit or exponential
buckets) `_count` and `_sum` counters. Each Airflow process exports its own
cumulative stream (told apart by its start time): a counter is the sum over
the streams seen, kept after a process ends, so it never goes down; delta
points are added up.
"""

import argparse
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)

DELTA = 1  # AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA
_BAD = re.compile(r"[^a-zA-Z0-9_:]")


def prom_name(name):
    name = _BAD.sub("_", name)
    return "_" + name if name[:1].isdigit() else name


def _attr(value):
    kind = value.WhichOneof("value")
    return "" if kind is None else str(getattr(value, kind))


def _labels(point):
    out = {prom_name(kv.key): _attr(kv.value) for kv in point.attributes}
    return tuple(sorted(out.items()))


def _number(point):
    return point.as_int if point.WhichOneof("value") == "as_int" else point.as_double


class Store:
    """The latest state of every series: ``counters`` {(name, labels):
    {stream start: value}}, ``gauges`` {(name, labels): value}; ``helps``."""

    def __init__(self):
        self.lock = threading.Lock()
        self.counters, self.gauges, self.helps = {}, {}, {}

    def _count(self, name, labels, start, value, delta):
        streams = self.counters.setdefault((name, labels), {})
        streams[start] = streams.get(start, 0) + value if delta else value

    def add(self, request):
        """Fold an ExportMetricsServiceRequest into the store."""
        with self.lock:
            for rm in request.resource_metrics:
                for sm in rm.scope_metrics:
                    for metric in sm.metrics:
                        self._metric(metric)

    def _metric(self, metric):
        base = prom_name(metric.name)
        kind = metric.WhichOneof("data")
        if kind == "sum" and metric.sum.is_monotonic:
            name = base if base.endswith("_total") else base + "_total"
            self.helps[name] = metric.description or metric.name
            for p in metric.sum.data_points:
                delta = metric.sum.aggregation_temporality == DELTA
                self._count(name, _labels(p), p.start_time_unix_nano, _number(p), delta)
        elif kind in ("sum", "gauge"):
            self.helps[base] = metric.description or metric.name
            for p in getattr(metric, kind).data_points:
                self.gauges[(base, _labels(p))] = _number(p)
        elif kind in ("histogram", "exponential_histogram"):
            data = getattr(metric, kind)
            delta = data.aggregation_temporality == DELTA
            for suffix in ("_count", "_sum"):
                self.helps[base + suffix] = f"{metric.description or metric.name} ({suffix[1:]})"
            for p in data.data_points:
                self._count(base + "_count", _labels(p), p.start_time_unix_nano, p.count, delta)
                self._count(base + "_sum", _labels(p), p.start_time_unix_nano, p.sum, delta)

    def text(self):
        """Prometheus' text format of everything stored."""
        with self.lock:
            series = {}
            for (name, labels), streams in self.counters.items():
                series.setdefault(name, ("counter", []))[1].append((labels, sum(streams.values())))
            for (name, labels), value in self.gauges.items():
                series.setdefault(name, ("gauge", []))[1].append((labels, value))
            lines = []
            for name in sorted(series):
                kind, points = series[name]
                lines.append(f"# HELP {name} {self.helps.get(name, name)}")
                lines.append(f"# TYPE {name} {kind}")
                for labels, value in sorted(points):
                    text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
                    lines.append(f"{name}{{{text}}} {_fmt(value)}" if text else f"{name} {_fmt(value)}")
            return "\n".join(lines) + "\n"


def _fmt(value):
    """Full precision (``%g`` would round large counters to six digits)."""
    value = float(value)
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


def _escape(value):
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def handler(store, route):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server API)
            if route != "otlp" or self.path != "/v1/metrics":
                self.send_error(404)
                return
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            request = ExportMetricsServiceRequest()
            try:
                request.ParseFromString(body)
            except Exception:  # pylint: disable=broad-except  # protobuf's DecodeError
                self.send_error(400, "not an OTLP protobuf ExportMetricsServiceRequest")
                return
            store.add(request)
            self._send(200, "application/x-protobuf", ExportMetricsServiceResponse().SerializeToString())

        def do_GET(self):  # noqa: N802 (http.server API)
            if route != "metrics" or self.path != "/metrics":
                self.send_error(404)
                return
            self._send(200, "text/plain; version=0.0.4", store.text().encode())

        def _send(self, status, ctype, data):
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    return Handler


def _addr(text):
    host, _, port = text.rpartition(":")
    return host, int(port)


def serve(otlp, listen, store=None):
    """Start both servers in threads; return them (tests shut them down)."""
    store = store or Store()
    servers = [
        ThreadingHTTPServer(_addr(otlp), handler(store, "otlp")),
        ThreadingHTTPServer(_addr(listen), handler(store, "metrics")),
    ]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    return servers


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--otlp", required=True, help="host:port Airflow pushes OTLP/HTTP to (loopback)")
    parser.add_argument("--listen", required=True, help="host:port of /metrics (the node address)")
    args = parser.parse_args(argv)
    servers = serve(args.otlp, args.listen)
    threading.Event().wait()
    return servers


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
