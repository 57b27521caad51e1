"""The benchmark's row per input format (``processor.bench.formats_alone``): the bench's events written as X12
837P interchanges and HL7 v2 ORM^O01 messages (``formats.build``) read back into the same events, and the
module run on a tiny input gives the three rows. Not timed: no figure is compared with a goal."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

from processor.bench import report
from processor.bench.data import BenchData
from processor.bench.formats_alone import Corpus
from processor.config import Settings
from processor.formats.build import write_837p, write_orm
from processor.formats.records import read_record
from processor.samples import generate

TOPICS = Settings().topics


def _undotted(code: str) -> str:
    return code[:3] + code[4:] if len(code) > 4 and code[3] == "." and "." not in code[4:] else code


def _hc_system(code: str) -> str:
    """SV101's qualifier HC does not tell CPT from HCPCS: the reader goes by the code's shape (a malformed
    CPT code, 9921, reads as HCPCS)."""
    return "CPT" if len(code) == 5 and code[:4].isdigit() and (code[4].isdigit() or code[4] in "FTU") else "HCPCS"


def test_an_837p_of_sample_claims_reads_back_as_those_claims():
    claims = [event for kind, event in generate(400, seed=3) if kind == "claim" and "claim_type" not in event][:50]
    claims = [{**claim, "submitter_id": "SUB0042"} for claim in claims]  # an interchange comes from one submitter
    raw = write_837p(claims, control_number=12)
    read = read_record(raw, None, TOPICS.claims, 0, 9, 0)
    assert read.failure is None
    events = [orjson.loads(event.value) for event in read.events]
    latest = max(claim["submitted_at"] for claim in claims)
    expected = [
        {**claim, "claim_type": "professional", "submitted_at": latest,
         "diagnoses": [{**d, "code": _undotted(d["code"])} for d in claim["diagnoses"]],
         "lines": [{**line, "system": _hc_system(line["code"])} for line in claim["lines"]]}
        for claim in claims
    ]  # fmt: skip
    assert events == expected


def test_an_orm_of_a_sample_order_reads_back_as_that_order():
    orders = [event for kind, event in generate(200, seed=3) if kind == "order"]
    assert orders
    for n, order in enumerate(orders):
        read = read_record(write_orm(order, f"B{n}"), None, TOPICS.orders, 0, n, 0)
        assert read.failure is None
        assert [orjson.loads(event.value) for event in read.events] == [order]


def test_the_corpus_puts_a_submitters_claims_together_and_says_one_time_for_them():
    events = generate(600, seed=5)
    corpus = Corpus.make(events, 10, TOPICS)
    professional = [e for k, e in events if k == "claim" and e.get("claim_type", "professional") == "professional"]
    assert len(corpus.json_claims) == len(professional)
    assert len(corpus.json_orders) == sum(kind == "order" for kind, _ in events) == len(corpus.hl7)
    read = [read_record(value, None, topic, 0, n, 0) for n, (topic, value) in enumerate(corpus.x12)]
    claims = [orjson.loads(event.value) for record in read for event in record.events]
    assert len(claims) == len(professional) and all(len(record.events) <= 10 for record in read)
    for record in read:
        group = [orjson.loads(event.value) for event in record.events]
        assert len({c["submitter_id"] for c in group}) == 1 and len({c["submitted_at"] for c in group}) == 1
    as_json = {c["claim_id"]: c["submitted_at"] for c in map(orjson.loads, (v for _, v in corpus.json_claims))}
    assert {c["claim_id"]: c["submitted_at"] for c in claims} == as_json


def test_formats_alone_gives_a_row_per_input_format(tmp_path: Path):
    lines = tmp_path / "events.lines"
    BenchData.make(300, 200, seed=7).write_lines(lines)
    done = subprocess.run(
        [sys.executable, "-m", "processor.bench.formats_alone", str(lines), "--warmup", "200", "--claims", "20"],
        capture_output=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    result = orjson.loads(done.stdout)
    rows = result["rows"]
    assert list(rows) == ["json", "x12_837p", "hl7v2_orm"]
    for name, row in rows.items():
        assert row["events"] > 0 and row["events_per_s"] > 0 and row["cpu_s_per_100k"] > 0, name
        assert row["dead_letters"] == 0, name
    # The same events each way: the 837's claims and the messages' orders are the JSON row's.
    assert rows["json"]["events"] == rows["x12_837p"]["events"] + rows["hl7v2_orm"]["events"]
    assert rows["json"]["claims"]["events"] == rows["x12_837p"]["events"]
    assert rows["x12_837p"]["responses"] == 2 * rows["x12_837p"]["records"]  # a 999 and a 277CA each
    assert rows["hl7v2_orm"]["responses"] == rows["hl7v2_orm"]["records"]  # an ACK each
    assert result["check"]["events"] > 0 and result["check"]["differ"] == 0
    printed = "\n".join(report._formats_lines(result))
    for row in rows.values():
        assert row["label"] in printed
