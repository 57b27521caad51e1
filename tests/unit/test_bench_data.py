"""The benchmark's events (``processor.bench.data``): what the latency phase sends must be the drain's kind of
load, not a load of duplicates the drain never had."""

from __future__ import annotations

import orjson

from processor.bench.data import BenchData
from processor.engine.duplicates import entry


def test_latency_events_are_new_events_of_the_same_mix_not_repeats_of_the_backlog():
    data = BenchData.make(events=2000, warmup=200, seed=7)
    latency = data.latency_events(1500)
    keys = {key for _, key, _ in [*data.warmup, *data.backlog]}
    assert len({key for _, key, _ in latency}) == 1500 and not keys & {key for _, key, _ in latency}

    def billed(claim: dict) -> frozenset[str]:
        seen = entry(claim, "0:1", "0-1")
        return frozenset(line.exact for line in seen.lines) if seen else frozenset()

    resent = {billed(orjson.loads(value)) for kind, _, value in data.backlog if kind == "claim"} - {frozenset()}
    claims = [orjson.loads(value) for kind, _, value in latency if kind == "claim"]
    # A claim billing a backlog claim's lines again is a duplicate: decided twice by the duplicate check. (A claim
    # with no member id, one of the samples' mistakes, bills nothing the window could hold.)
    assert sum(billed(claim) in resent for claim in claims) == 0
    assert 0.6 < len(claims) / len(latency) < 0.8  # the samples' mix: about 30 % orders
