"""A million bad inputs through the worker's per-record path (``routing.Router``: size check, decoder, engine,
encoder).

No broker: the records are aiokafka ``ConsumerRecord`` values built here. Every input must come out as
a dead letter or as a decision with a reason, and nothing may raise.
"""

from __future__ import annotations

import os
import random

import orjson
from aiokafka.structs import ConsumerRecord

from processor.code_table.table import CodeTable
from processor.config import Settings
from processor.engine.rules import Outcome
from processor.routing import Router
from processor.samples import claim, order
from tests.conftest import SMALL_TABLE

COUNT = int(os.environ.get("PROCESSOR_FUZZ_COUNT", "1000000"))


def bad_inputs(rng: random.Random, count: int):
    """Yield (kind, raw bytes): random bytes, wrong types, huge values, deep nesting, broken claims."""
    valid_claim = orjson.dumps(claim(rng, 1, False))
    for i in range(count):
        shape = i % 20
        if shape < 12:  # random bytes, sometimes starting like JSON
            prefix = rng.choice([b"", b"{", b'{"claim_id":', b"["])
            yield "claim", prefix + rng.randbytes(rng.randrange(0, 64))
        elif shape < 16:  # JSON that is not an object, or is cut short
            yield "order", rng.choice([b"[]", b"null", b"42", b'"text"', b"true", valid_claim[: rng.randrange(1, 200)]])
        elif shape == 16:  # deep nesting, inside and outside what the decoder accepts
            depth = rng.choice([100, 300, 1100])
            yield "claim", b'{"claim_id": "X", "extra": ' + b"[" * depth + b"]" * depth + b"}"
        elif shape == 17:  # huge values
            yield (
                "claim",
                orjson.dumps({"claim_id": "X" * rng.choice([100, 10_000]), "lines": [{"units": 1e308}] * 500}),
            )
        else:  # a real claim or order with one field of the wrong type or value
            event = claim(rng, i, True) if shape == 18 else order(rng, i, True)
            # Not a field an inpatient stay may leave empty: its lines and procedures.
            optional = {"procedures", "lines"} if "admission_date" in event else set()
            field = rng.choice([name for name in event if name not in optional])
            event[field] = rng.choice([None, 12, -1.5, "", [], {}, "x" * 100, [[[]]], {"a": {"b": {}}}])
            yield ("claim" if "claim_id" in event else "order"), orjson.dumps(event)


def test_a_million_bad_inputs_are_dead_lettered_or_returned_with_a_reason():
    settings = Settings(max_record_bytes=65_536)
    router = Router(settings.topics, CodeTable().load(SMALL_TABLE), None, settings.max_record_bytes)
    topics = {"claim": settings.topics.claims, "order": settings.topics.orders}
    outcomes = {"dead": 0, "returned": 0, "needs_review": 0}
    out: list = []
    for offset, (kind, raw) in enumerate(bad_inputs(random.Random(2026), COUNT)):
        record = ConsumerRecord(topics[kind], 0, offset, 0, 0, None, raw, None, 0, len(raw), ())
        out.clear()
        (decision,) = router.route(record, "2026-01-01T00:00:00.000Z", out)
        topic, _key, value, _partition = out[0]
        if decision is None:
            assert topic == settings.topics.dead_letter
            assert orjson.loads(value)["error"]
            outcomes["dead"] += 1
            continue
        decision = orjson.loads(value)
        assert decision["outcome"] != Outcome.ACCEPTED and decision["reasons"], raw[:200]
        outcomes[decision["outcome"]] += 1
    assert sum(outcomes.values()) == COUNT
    assert all(outcomes.values()), outcomes  # every path was taken
