"""The worker's loop against the real broker: its phases timed, and batches bounded by the commit interval."""

from __future__ import annotations

import dataclasses
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from processor.app.sensor import PHASES
from processor.app.worker import Worker
from tests.conftest import SMALL_TABLE, a_claim
from tests.integration.conftest import counted, load_table, produce, running_worker, scrape

pytestmark = pytest.mark.kafka


def batches_up_to(worker: Worker, records: int) -> tuple[float, float]:
    """(batches of at most ``records`` records, all batches) from the worker's batch-size histogram."""
    with urllib.request.urlopen(f"http://127.0.0.1:{worker.metrics_port}/metrics", timeout=5) as response:
        text = response.read().decode()
    samples = [s for family in text_string_to_metric_families(text) for s in family.samples]
    small = next(s.value for s in samples if s.name == "processor_batch_records_bucket"
                 and float(s.labels["le"]) == records)  # fmt: skip
    return small, next(s.value for s in samples if s.name == "processor_batch_records_count")


async def test_every_phase_of_an_exactly_once_batch_is_timed(settings):
    settings = dataclasses.replace(settings, duplicate_window_days=30)  # the window's commit is a phase too
    await load_table(settings, SMALL_TABLE)
    async with running_worker(settings) as worker:
        await produce(settings, settings.topics.claims, [a_claim(claim_id=f"P{i}") for i in range(40)])
        await counted(worker, claim=40)
        metrics = scrape(worker)
    timed = {labels[0]: n for (name, labels), n in metrics.items() if name == "processor_batch_phase_seconds_count"}
    assert set(timed) == set(PHASES)
    batches = metrics["processor_batch_records_count", ()]
    for phase in ("queued", "decide", "deliver", "settle_wait", "window_commit"):
        assert timed[phase] >= batches, phase  # once a batch at least (settle_wait also on an idle poll)
    assert timed["fetch_wait"] > batches  # the polls that found nothing count too
    for phase in ("txn_begin_send", "txn_offsets", "txn_commit"):
        assert timed[phase] >= batches, phase  # one a partition number a batch touched


async def test_a_short_commit_interval_keeps_batches_small(settings):
    # 1 ms: once the worker knows its decide rate (after its first batch), a batch takes the fewest records
    # allowed (pacing.MIN_BATCH, 1,000), where it would take up to batch_max_records (3,000): a backlog that
    # is there before the worker starts comes in batches of up to 3,000 otherwise.
    settings = dataclasses.replace(settings, commit_interval_ms=1)
    await load_table(settings, SMALL_TABLE)
    await produce(settings, settings.topics.claims, [a_claim(claim_id=f"F{i}") for i in range(9000)])
    async with running_worker(settings) as worker:
        await counted(worker, claim=9000, timeout=180)
        small, total = batches_up_to(worker, 1000)
    assert total - small <= 1  # only the first batch, taken before the rate was known, may be larger
    assert total >= 7  # so 9,000 records took at least 6 batches of at most 1,000 after it
