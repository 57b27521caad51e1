"""The engine alone per input format, with no broker: the same claims and orders as JSON events, as X12 837P
interchanges and as HL7 v2 ORM^O01 messages, each record handled by ``Router.route`` as the worker does
(the format told by the first bytes, the document read into one event per claim or order, each decided and
serialized, the 999 and 277CA or the ACK built for the responses topic).

The events are the engine row's (a file of ``KIND VALUE`` lines), less the institutional claims (837I, not
measured here): the professional claims and the orders. The claims of one submitter go 50 to an interchange
(``--claims``), submitted at the latest of their times, which the JSON events then say too
(``formats.build``); an order is one message. The table is the engine row's (``build_table(demo=True)``), no
duplicate window. The first ``--warmup`` events are not timed: up to 2,000 of them are decided in every format
first and their decisions compared (outcome, rule and field of every reason), which must agree; then at most
``--limit`` events (20,000) are timed. Events per second count
claims and orders decided, so a 50-claim interchange counts 50.

Run as ``python -m processor.bench.formats_alone FILE --warmup N``; prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from processor.bench.machine import memory_mb
from processor.code_table.sources import build_table
from processor.config import Settings, Topics
from processor.engine import Decision
from processor.formats.build import submitted_of, write_837p, write_orm
from processor.routing import Message, Received, Router

CLAIMS_PER_INTERCHANGE = 50
LIMIT = 20_000  # timed events at most: the formats' rows take several times the JSON row's time
CHECK_LIMIT = 2_000  # warm-up events decided in every format and compared, at most
DECIDED_AT = "2026-01-01T00:00:00.000Z"
TIMESTAMP_MS = 1_767_225_600_000
ROWS = {
    "json": "JSON events",
    "x12_837p": "X12 837P",
    "hl7v2_orm": "HL7 v2 ORM^O01",
}
Event = tuple[str, dict[str, Any]]  # kind, event


@dataclass
class Corpus:
    """The same events three ways, as input records ``(topic, value)``: JSON claims, JSON orders, 837P
    interchanges, ORM^O01 messages."""

    json_claims: list[tuple[str, bytes]]
    json_orders: list[tuple[str, bytes]]
    x12: list[tuple[str, bytes]]
    hl7: list[tuple[str, bytes]]

    @classmethod
    def make(cls, events: Sequence[Event], per_interchange: int, topics: Topics) -> Corpus:
        claims = [event for kind, event in events if kind == "claim" and event.get("claim_type", "professional")
                  == "professional"]  # fmt: skip
        orders = [event for kind, event in events if kind == "order"]
        interchanges = list(_interchanges(claims, per_interchange))
        json_claims = [(topics.claims, orjson.dumps(claim)) for group in interchanges for claim in group]
        x12 = [(topics.claims, write_837p(group, n)) for n, group in enumerate(interchanges, start=1)]
        json_orders = [(topics.orders, orjson.dumps(order)) for order in orders]
        hl7 = [(topics.orders, write_orm(order, f"B{n}")) for n, order in enumerate(orders, start=1)]
        return cls(json_claims, json_orders, x12, hl7)

    def rows(self) -> dict[str, list[tuple[str, bytes]]]:
        return {"json": self.json_claims + self.json_orders, "x12_837p": self.x12, "hl7v2_orm": self.hl7}


def _interchanges(claims: list[dict[str, Any]], size: int) -> Iterable[list[dict[str, Any]]]:
    """The claims of each submitter, ``size`` to a group in the order they come, each claim's ``submitted_at``
    set to its group's (the interchange's BHT says one time for all), copies of the events."""
    pending: dict[str, list[dict[str, Any]]] = {}
    groups: list[list[dict[str, Any]]] = []
    for claim in claims:
        group = pending.setdefault(str(claim.get("submitter_id")), [])
        group.append(claim)
        if len(group) == size:
            groups.append(pending.pop(str(claim.get("submitter_id"))))
    groups += pending.values()
    for group in groups:
        submitted = submitted_of(group)
        yield [{**claim, "submitted_at": submitted} for claim in group]


def _route_all(router: Router, records: list[tuple[str, bytes]], first_offset: int = 0) -> list[Decision | None]:
    decisions: list[Decision | None] = []
    for offset, (topic, value) in enumerate(records, start=first_offset):
        out: list[Message] = []
        decisions += router.route(Received(topic, 0, offset, TIMESTAMP_MS, None, value), DECIDED_AT, out)
    return decisions


def _verdict(decision: Decision | None) -> Any:
    if decision is None:
        return None
    return decision.outcome, tuple((reason.rule.id, reason.field) for reason in decision.reasons)


def compare(router: Router, corpus: Corpus) -> dict[str, Any]:
    """Decide every event of ``corpus`` in each format; the events whose decisions differ from JSON's."""
    json_of = {d.event_id: _verdict(d) for d in _route_all(router, corpus.rows()["json"]) if d is not None}
    differ: list[str] = []
    events = 0
    for name in ("x12_837p", "hl7v2_orm"):
        for decision in _route_all(router, corpus.rows()[name]):
            events += 1
            if decision is None or json_of.get(decision.event_id) != _verdict(decision):
                differ.append(f"{name}:{decision.event_id if decision else None}")
    return {"events": events, "json_events": len(json_of), "differ": len(differ), "first_differing": differ[:5]}


def measure(router: Router, records: list[tuple[str, bytes]]) -> dict[str, Any]:
    """Route every record once, timed: events decided, wall and CPU time."""
    clock = time.perf_counter
    events = responses = letters = 0
    responses_topic, dead_letter = router.topics.responses, router.topics.dead_letter
    started, cpu_started = clock(), time.process_time()
    for offset, (topic, value) in enumerate(records):
        out: list[Message] = []
        decided = router.route(Received(topic, 0, offset, TIMESTAMP_MS, None, value), DECIDED_AT, out)
        events += sum(d is not None for d in decided)
        for message in out:
            if message[0] == responses_topic:
                responses += 1
            elif message[0] == dead_letter:
                letters += 1
    elapsed, cpu = clock() - started, time.process_time() - cpu_started
    return {
        "records": len(records),
        "bytes": sum(len(value) for _, value in records),
        "events": events,
        "responses": responses,
        "dead_letters": letters,
        "seconds": round(elapsed, 4),
        "cpu_seconds": round(cpu, 4),
    }


def _rates(row: dict[str, Any]) -> dict[str, Any]:
    n, elapsed, cpu = row["events"], row["seconds"], row["cpu_seconds"]
    return {
        **row,
        "events_per_s": round(n / elapsed, 1) if elapsed else 0.0,
        "cpu_s_per_100k": round(cpu / n * 100_000, 3) if n else None,
        "us_per_event": round(elapsed / n * 1e6, 2) if n else None,
    }


def run(
    events: Sequence[Event], warmup: int, per_interchange: int = CLAIMS_PER_INTERCHANGE, limit: int | None = LIMIT
) -> dict[str, Any]:
    """The three rows (and the check) for ``events``: the first ``warmup`` of them untimed, then at most
    ``limit`` timed."""
    settings = Settings()
    table = build_table(demo=True)
    router = Router(settings.topics, table, None, settings.max_record_bytes)
    check = compare(router, Corpus.make(events[: min(warmup, CHECK_LIMIT)], per_interchange, settings.topics))
    if check["differ"]:
        raise RuntimeError(f"decisions differ between JSON and the formats: {check}")
    timed = events[warmup:] if limit is None else events[warmup : warmup + limit]
    corpus = Corpus.make(timed, per_interchange, settings.topics)
    claims, orders = measure(router, corpus.json_claims), measure(router, corpus.json_orders)
    rows: dict[str, Any] = {
        "json": {
            **{key: claims[key] + orders[key] for key in claims},
            "claims": _rates(claims),
            "orders": _rates(orders),
        },
        "x12_837p": measure(router, corpus.x12),
        "hl7v2_orm": measure(router, corpus.hl7),
    }
    for name, row in rows.items():
        rows[name] = {"label": ROWS[name], **_rates(row)}
    rows["x12_837p"]["label"] += f", up to {per_interchange} claims an interchange"
    rows["hl7v2_orm"]["label"] += ", one order a message"
    memory = memory_mb(os.getpid()) or {}
    return {
        "label": "engine alone per input format (no broker, Router.route)",
        "claims_per_interchange": per_interchange,
        "check": check,
        "rows": rows,
        "rss_mb": memory.get("rss"),
        "peak_rss_mb": memory.get("peak"),
    }


def read_events(path: str) -> list[Event]:
    with open(path, "rb") as lines:
        return [(kind.decode(), orjson.loads(value))
                for kind, _, value in (line.rstrip(b"\n").partition(b" ") for line in lines)]  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file")
    parser.add_argument("--warmup", type=int, default=0)
    parser.add_argument("--claims", type=int, default=CLAIMS_PER_INTERCHANGE, help="claims an interchange")
    parser.add_argument("--limit", type=int, default=LIMIT, help="timed events at most (0: all)")
    args = parser.parse_args(argv)
    result = run(read_events(args.file), args.warmup, args.claims, args.limit or None)
    sys.stdout.write(orjson.dumps(result).decode() + "\n")


if __name__ == "__main__":
    main()
