"""The worker's HTTP endpoints, served on one port from a background thread.

``/metrics`` is the Prometheus exposition of a registry; ``/healthz`` answers 200 while the worker's loop is
alive; ``/readyz`` answers 200 only once the code table is loaded and the worker consumes (503 before).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class HealthServer:
    """Serves /metrics, /healthz and /readyz from a background thread."""

    def __init__(self, registry: CollectorRegistry, is_alive: Callable[[], bool], is_ready: Callable[[], bool]) -> None:
        self._metrics_app = make_wsgi_app(registry)
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
