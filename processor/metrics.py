"""Prometheus metrics and the health endpoints, served on one HTTP port.

``/metrics`` is the Prometheus exposition; ``/healthz`` answers 200 while the worker's loop is alive;
``/readyz`` answers 200 only once the code table is loaded and the worker consumes (503 before).
Labels carry bounded values only (kind, outcome, reason id, topic): never patient data.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app

from processor.engine.rules import RULES, Outcome

KINDS = ("claim", "order")
# Produce-to-acknowledged-decision latency; the 100 ms goal sits on a bucket boundary.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """The processor's metrics, in their own registry (one per worker, so tests can run several)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.consumed = Counter(
            "processor_events_consumed", "Records read from the input topics.", ["kind"], registry=r
        )
        self.decisions = Counter(
            "processor_decisions", "Decisions published, by kind and outcome.", ["kind", "outcome"], registry=r
        )
        self.reasons = Counter(
            "processor_reasons", "Reasons given in published decisions, by rule id.", ["kind", "reason"], registry=r
        )
        self.dead_letters = Counter(
            "processor_dead_letters", "Records sent to the dead-letter topic, by source topic.", ["topic"], registry=r
        )
        self.latency = Histogram(
            "processor_decision_latency_seconds",
            "Time from an event's Kafka timestamp to the broker's acknowledgement of its decision.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "processor_batch_records", "Records per batch taken from Kafka.",
            buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 5000), registry=r,
        )  # fmt: skip
        self.code_table_codes = Gauge(
            "processor_code_table_codes", "Code versions in the loaded code table.", registry=r
        )
        self.code_table_offset = Gauge(
            "processor_code_table_offset", "Code-table topic records read (the table version).", registry=r
        )
        self.code_table_updated = Gauge(
            "processor_code_table_last_update_timestamp_seconds",
            "Kafka timestamp of the newest code-table record read (when the table content last changed).",
            registry=r,
        )
        self.code_table_invalid = Gauge(
            "processor_code_table_invalid_records", "Code-table records skipped as invalid.", registry=r
        )
        self.lag = Gauge(
            "processor_consumer_lag",
            "Records on an input partition not yet decided and committed (high watermark - committed offset).",
            ["topic", "partition"],
            registry=r,
        )
        self.ready = Gauge("processor_ready", "1 when the code table is loaded and the worker consumes.", registry=r)
        # Create every labelled series up front, so dashboards and alerts see zeros, not gaps.
        for kind in KINDS:
            self.consumed.labels(kind)
            for outcome in Outcome:
                self.decisions.labels(kind, outcome.value)
        for rule_id in RULES:
            for kind in KINDS:
                self.reasons.labels(kind, rule_id)


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class HealthServer:
    """Serves /metrics, /healthz and /readyz from a background thread."""

    def __init__(self, metrics: Metrics, is_alive: Callable[[], bool], is_ready: Callable[[], bool]) -> None:
        self._metrics_app = make_wsgi_app(metrics.registry)
        self._is_alive = is_alive
        self._is_ready = is_ready
        self._server: WSGIServer | None = None

    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if path in ("/healthz", "/readyz"):
            ok = self._is_alive() if path == "/healthz" else self._is_ready()
            status = "200 OK" if ok else "503 Service Unavailable"
            start_response(status, [("Content-Type", "text/plain")])
            return [b"ok\n" if ok else b"not ready\n" if path == "/readyz" else b"not alive\n"]
        return self._metrics_app(environ, start_response)

    def start(self, host: str, port: int) -> int:
        """Listen on ``host:port`` (port 0 picks a free one); returns the port."""
        self._server = make_server(host, port, self._app, server_class=_Server, handler_class=_Quiet)
        threading.Thread(target=self._server.serve_forever, name="health-server", daemon=True).start()
        return self._server.server_port

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
