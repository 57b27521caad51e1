"""The commands a user runs, as subprocesses against the real broker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.integration.conftest import table_on_topic

pytestmark = pytest.mark.kafka


def env_for(settings) -> dict[str, str]:
    prefix = settings.topics.claims.removesuffix("claims")
    return {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
            "PROCESSOR_TOPIC_PREFIX": prefix, "PROCESSOR_METRICS_PORT": "0"}  # fmt: skip


async def test_load_csv_publishes_what_the_follower_reads(settings, tmp_path):
    csv = tmp_path / "payer.csv"
    csv.write_text("system,code,description,billable,valid_from,valid_to\n"
                   "CPT,99213,,true,2024-01-01,\nACME,X1,Internal visit,true,2024-01-01,2024-12-31\n")  # fmt: skip
    subprocess.run([sys.executable, "-m", "processor", "load", "csv", str(csv)], env=env_for(settings),
                   check=True, capture_output=True, timeout=120)  # fmt: skip
    table = await table_on_topic(settings)
    assert table.systems() == {"CPT", "ACME"}
    assert table.versions("ACME", "X1")[0].valid_to == "2024-12-31"
    assert table.version == "code-table@0:2"


def test_demo_runs_the_whole_path_and_stops_on_ctrl_c(settings):
    demo = subprocess.Popen([sys.executable, "-m", "processor", "demo", "--events", "300"], env=env_for(settings),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    output = []
    deadline = time.monotonic() + 180
    try:
        for line in demo.stdout:  # the demo prints its summary, then waits for Ctrl-C
            output.append(line)
            if "Ctrl-C stops it" in line or time.monotonic() > deadline:
                break
        demo.send_signal(signal.SIGINT)
        rest, _ = demo.communicate(timeout=60)
    finally:
        demo.kill()
    text = "".join(output) + rest
    assert demo.returncode == 0, text
    assert "Decided 314 records" in text  # 300 samples, 3 garbage, 10 claims of an 837P and an ORM's order
    assert "dead-lettered                3" in text
    for answer in ("999    control number", "277CA  control number", "ACK    control number"):
        assert answer in text, text
    assert "Top reasons:" in text and "/metrics" in text
    assert text.rstrip().endswith("Stopped.")
