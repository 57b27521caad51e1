"""The worker loop's clock (``app.pacing``): a batch bounded by the commit interval as well as by its size, the
phases the sensor is told, and the bench's reading of them (``bench.phases``)."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

import pytest
from aiokafka import TopicPartition
from prometheus_client import generate_latest

from processor.app.metrics import Metrics
from processor.app.pacing import MIN_BATCH, Pacing, Turns
from processor.app.sensor import PHASES, Sensor
from processor.bench import phases
from processor.config import Settings, SettingsError


class Phases(Sensor):
    """A sensor that keeps every phase it is told."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, float]] = []

    def on_phase(self, phase: str, seconds: float) -> None:
        self.seen.append((phase, seconds))


def pacing(interval_ms: int = 100, batch_max_records: int = 3000) -> tuple[Pacing, Phases]:
    sensor = Phases()
    settings = Settings(commit_interval_ms=interval_ms, batch_max_records=batch_max_records, metrics_port=0)
    return Pacing(settings, sensor), sensor


def test_the_commit_interval_is_a_setting_of_100_ms_checked_like_the_others():
    assert Settings().commit_interval_ms == 100
    assert Settings.from_env(env={"PROCESSOR_COMMIT_INTERVAL_MS": "250"}).commit_interval_ms == 250
    with pytest.raises(SettingsError, match="PROCESSOR_COMMIT_INTERVAL_MS must be at least 1, not 0"):
        Settings.from_env(env={"PROCESSOR_COMMIT_INTERVAL_MS": "0"})
    with pytest.raises(SettingsError, match="PROCESSOR_COMMIT_INTERVAL_MS must be a whole number, not '1s'"):
        Settings.from_env(env={"PROCESSOR_COMMIT_INTERVAL_MS": "1s"})


def test_before_anything_is_decided_a_batch_is_bounded_by_its_size_alone():
    clock, _ = pacing()
    assert clock.max_records() == 3000


@pytest.mark.parametrize(
    ("per_record_us", "expected", "why"),
    [
        (25, 3000, "4,000 records fit in 100 ms: the size bounds the batch"),
        (50, 2000, "2,000 records are 100 ms of deciding"),
        (80, 1250, "1,250 records are 100 ms"),
        (400, MIN_BATCH, "a busy machine: never fewer than MIN_BATCH (1,000), however slow"),
    ],
)
def test_a_batch_takes_at_most_what_is_decided_in_one_commit_interval(per_record_us, expected, why):
    clock, _ = pacing()
    clock.decided(1000, 1000 * per_record_us / 1e6)
    assert clock.max_records() == expected, why


def test_the_decide_rate_follows_the_machine_without_jumping_on_one_slow_batch():
    clock, _ = pacing()
    for _ in range(20):
        clock.decided(1000, 0.05)  # 50 us a record: 2,000 fit
    assert clock.max_records() == 2000
    clock.decided(1000, 0.1)  # one batch twice as slow (a full collection, a table change)
    after_one = clock.max_records()
    assert 1000 < after_one < 2000  # smaller, but not the 1,000 that batch's rate alone would give
    clock.decided(10, 5.0)  # too few records to tell a rate: ignored
    assert clock.max_records() == after_one


def test_a_size_below_the_minimum_batch_is_kept():
    clock, _ = pacing(batch_max_records=600)
    clock.decided(1000, 10.0)
    assert clock.max_records() == 600


def test_fetching_reports_the_wait_and_how_long_the_oldest_record_queued():
    clock, sensor = pacing()
    now_ms = time.time() * 1000
    records = {
        TopicPartition("claims", 0): [SimpleNamespace(timestamp=now_ms - 300), SimpleNamespace(timestamp=now_ms)],
        TopicPartition("claims", 1): [SimpleNamespace(timestamp=now_ms - 40)],
    }

    class Consumer:
        async def getmany(self, timeout_ms: int, max_records: int) -> dict:
            assert (timeout_ms, max_records) == (200, 3000)
            return records

    assert asyncio.run(clock.fetch(Consumer(), 200)) is records  # type: ignore[arg-type]
    seen = dict(sensor.seen)
    assert set(seen) == {"fetch_wait", "queued"}
    assert 0.3 <= seen["queued"] < 5.0  # the oldest record's age, not the newest's
    with clock.deciding():
        pass
    assert [name for name, _ in sensor.seen[-2:]] == ["decide", "decide_work"]


def test_nothing_fetched_reports_the_wait_only():
    clock, sensor = pacing()

    class Consumer:
        async def getmany(self, timeout_ms: int, max_records: int) -> dict:
            return {}

    asyncio.run(clock.fetch(Consumer(), 0))  # type: ignore[arg-type]
    assert [name for name, _ in sensor.seen] == ["fetch_wait"]


def test_a_phase_is_timed_when_its_work_fails_too():
    clock, sensor = pacing()

    async def failing() -> None:
        raise RuntimeError("the broker went away")

    with pytest.raises(RuntimeError):
        asyncio.run(clock.timed("deliver", failing()))
    assert [name for name, _ in sensor.seen] == ["deliver"]


def test_turns_come_by_time_not_by_count_and_what_runs_at_them_is_not_the_deciding():
    turns = Turns()
    assert not turns.due()  # just made: no work done yet
    deadline = time.perf_counter() + 1.0
    while not turns.due():  # about TURN_S of work later
        assert time.perf_counter() < deadline, "a turn never came due"
    worked = turns.worked_s()

    async def others_work_at_the_turn() -> None:
        async def slow_neighbour() -> None:
            time.sleep(0.05)  # e.g. the batch in flight's responses, on the same event loop

        neighbour = asyncio.ensure_future(slow_neighbour())
        await turns.give()
        await neighbour

    asyncio.run(others_work_at_the_turn())
    # The neighbour's 50 ms are not the deciding's. (Whether the next turn is due is not asserted: on a busy
    # machine the 2 ms to it may pass before the check.)
    assert worked <= turns.worked_s() < worked + 0.04


def test_the_bench_reads_the_phases_of_a_worker_between_two_scrapes():
    metrics = Metrics()
    metrics.on_batch_delivered({}, 0)  # a batch of 0 records: the size histogram counts it
    before = phases.parse(generate_latest(metrics.registry).decode())
    for seconds in (0.004, 0.006, 0.008, 0.2):
        metrics.on_phase("txn_commit", seconds)
    metrics.on_phase("decide", 0.03)
    tally = SimpleNamespace(kind="claim", timestamps=[0] * 500, outcomes={}, reasons={}, denied={}, dead=0)
    metrics.on_batch_delivered({TopicPartition("claims", 0): tally}, 1000)  # type: ignore[dict-item]
    after = phases.parse(generate_latest(metrics.registry).decode())

    found = phases.difference(before, after)
    assert found is not None
    assert found["records_per_batch"] == 500.0  # the batch of 500 since the first scrape, not the one before
    commit = found["txn_commit"]
    assert commit["count"] == 4
    assert commit["mean"] == pytest.approx(54.5)
    assert 5.0 <= commit["p50"] <= 10.0  # within the bucket of the middle values
    assert 150.0 <= commit["p99"] <= 250.0  # within the bucket of the slowest
    assert found["decide"]["count"] == 1
    assert found["fetch_wait"]["count"] == 0  # every phase is there from the start, at zero
    assert set(PHASES) <= set(found)
    assert phases.difference(None, after) is None  # a worker that could not be read: no figures, no guess

    report = phases.report({"eo": {"label": "processor exactly-once", "latency_ms": {"phases_ms": found}}})
    assert "txn_commit" in report and "fetch_wait" not in report  # phases never timed are left out
