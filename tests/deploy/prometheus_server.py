"""A real Prometheus server (Debian's ``prometheus`` package, installed by ``.ci/run``) for the test, on a free
loopback port, with a generated configuration; and the calls of its HTTP API that the tests make."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from processor.kafka.broker import free_port


def binary(name: str) -> str:
    """The path of a Prometheus binary; fails (never skips) with what to install when it is missing."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: `apt-get install prometheus` (Debian) provides prometheus and "
                    "promtool; .ci/run installs it")  # fmt: skip
    return path


POLL_SECONDS = 0.1


class Prometheus:
    """The HTTP API of a running server."""

    def __init__(self, url: str) -> None:
        self.url = url

    def get(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}{path}?{query}", timeout=10) as response:
            body = json.loads(response.read())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict]:
        """The result of an instant query; an invalid expression fails the test with the server's error."""
        try:
            data = self.get("/api/v1/query", query=expr)
        except urllib.error.HTTPError as err:
            raise AssertionError(f"Prometheus rejected {expr!r}: {err.read().decode()}") from err
        return data["result"]

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False


@contextlib.contextmanager
def prometheus_server(directory: Path, targets: list[str], rule_files: list[Path]) -> Iterator[Prometheus]:
    """Run Prometheus scraping ``targets`` every second as job ``processor`` (the job the alert rules name),
    evaluating ``rule_files`` every second, until the ``with`` ends."""
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
        "rule_files": [str(path) for path in rule_files],
        "scrape_configs": [{"job_name": "processor", "static_configs": [{"targets": targets}]}],
    }
    config_file = directory / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config))
    port = free_port()
    log = (directory / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [binary("prometheus"), f"--config.file={config_file}", f"--storage.tsdb.path={directory / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    server = Prometheus(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 30
        while not server.ready():
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"Prometheus did not start: {(directory / 'prometheus.log').read_text()[-2000:]}")
            time.sleep(POLL_SECONDS)  # polling for readiness, with the deadline above
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
