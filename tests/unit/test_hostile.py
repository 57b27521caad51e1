"""Bad input gets an answer, every time (issue 13, item 3).

Each class of hostile input the issue found, as a table of cases with the answer it gets now (a rule id, a
dead letter, a ``processor check`` output line); a property test that makes hostile variants of the sample
claims and orders and requires exactly one decision or dead letter each, every decision valid against its
schema, and nothing raised (no record dead-lettered for an engine error); ``processor check`` as a command
(missing file, directory, byte order mark, closed pipe); and the CSV loader's errors, which name the file,
the row and the column.
"""

from __future__ import annotations

import codecs
import io
import re
import subprocess
import sys
import time
from typing import Any

import orjson
import pytest
from aiokafka.structs import ConsumerRecord
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from processor import samples
from processor.check import MAX_BYTES, check_lines, read_lines
from processor.code_table.csv_rows import read_csv
from processor.code_table.table import CodeTable
from processor.config import Settings
from processor.contracts import MAX_DEPTH, SchemaProblem, real_datetime, schema_problems
from processor.engine.duplicates import SeenClaims
from processor.routing import Refused, Router, decide_value
from tests.conftest import SMALL_POLICY, SMALL_TABLE, a_claim, an_order, rows
from tests.unit.test_engine import born, dx, line
from tests.unit.test_schemas import validator

DECIDED_AT = "2026-01-01T00:00:00.000Z"
DECISION = validator("decision")
DEAD_LETTER = validator("dead-letter")
# The small table (a coverage policy, HCPCS modifiers, NCCI and MUE rows) with the codes the samples use.
SAMPLE_CODES = rows(
    *[("ICD-10-CM", code, True, "2024-10-01", None) for code in [*samples.DIAGNOSES, *samples.ADMISSIONS]],
    *[("ICD-10-PCS", code, True, "2024-10-01", None) for code in samples.ICD_PROCEDURES],
    *[(system, code, True, "2024-01-01", None) for system, code in [*samples.PROCEDURES, *samples.TESTS]],
)
TABLE = CodeTable("hostile").load([*SAMPLE_CODES, *SMALL_TABLE, *SMALL_POLICY])
DAY_MS = 86_400_000
# What a dead letter may say: the record, never the engine (an engine error would be a bug, dead-lettering a
# record that deserves a decision), and never the record's content.
DEAD_LETTER_ERRORS = re.compile(
    r"record is \d+ bytes; the limit is \d+|not valid UTF-8 JSON: .*|JSON value is a \w+, not an object"
    rf"|JSON is nested more than {MAX_DEPTH} levels deep|neither a claim \(claim_id\) nor a lab order \(order_id\)"
    r"|record value is null"
)


class WatchedWindow(SeenClaims):
    """A duplicate window that fails the test if a claim reaches it with a submission time that is no instant."""

    def check(self, claim: Any, source: str, control_number: str) -> Any:  # the JSON object, or the Claim decoded
        submitted = claim.get("submitted_at") if isinstance(claim, dict) else claim.submitted_at
        assert real_datetime(submitted) is not None, submitted
        return super().check(claim, source, control_number)


def answer(raw: bytes, window: SeenClaims | None = None) -> dict[str, Any] | str:
    """What the worker makes of ``raw``: its decision record (checked against the schema) or a dead letter's error."""
    result = decide_value(raw, None, TABLE, None, DECIDED_AT, {"line": 1}, MAX_BYTES, window, "line:1")
    if isinstance(result, Refused):
        assert DEAD_LETTER_ERRORS.fullmatch(result.error), result.error
        return result.error
    record = orjson.loads(result.value)
    DECISION.validate(record)
    return record


def nested(depth: int) -> bytes:
    """A valid claim with an unknown field nested ``depth`` levels deep (the claim itself is level 1)."""
    return orjson.dumps(a_claim(extra="NEST")).replace(b'"NEST"', b"[" * (depth - 1) + b"]" * (depth - 1))


def claim_line(**fields: Any) -> bytes:
    """A valid claim whose one line has ``fields`` changed."""
    return orjson.dumps(a_claim(lines=[{**line("99213", pointers=(1, 2)), **fields}]))


def diagnosis(code: str) -> bytes:
    return orjson.dumps(a_claim(diagnoses=dx(code, "I10")))


# (the class of the issue, the record, what it gets: a decision's outcome and its reasons (id, field), or "dead"
# and what the dead letter says)
HOSTILE = [
    # Crashes, fixed where they start.
    ("nesting between the decoder's limit (1024) and the encoder's (254) is refused as it is decoded",
     nested(300), ("dead", f"JSON is nested more than {MAX_DEPTH} levels deep")),
    ("one level past the limit is refused too", nested(MAX_DEPTH + 1), ("dead", "nested more than")),
    ("nesting up to the limit in a field the schema does not know is decided", nested(MAX_DEPTH), ("accepted", [])),
    ("past the decoder's own limit the record is not JSON", nested(1100), ("dead", "not valid UTF-8 JSON")),
    ("a pointer written 1.0 with a coverage policy loaded is returned, not an index error",
     claim_line(code="83036", diagnosis_pointers=[1.0]),
     ("returned", [("event.invalid_field", "lines[0].diagnosis_pointers[0]")])),
    ("a line number written 1.0 is returned", claim_line(line_number=1.0),
     ("returned", [("event.invalid_field", "lines[0].line_number")])),
    ("a submission time in year 10000 in UTC is returned before the window's arithmetic sees it",
     orjson.dumps(a_claim(submitted_at="9999-12-31T23:59:59-14:00")),
     ("returned", [("date.invalid_datetime", "submitted_at")])),
    ("a submission time in year 0 in UTC is returned before the window's arithmetic sees it",
     orjson.dumps(a_claim(submitted_at="0001-01-01T00:00:00+14:00")),
     ("returned", [("date.invalid_datetime", "submitted_at")])),
    # Decisions that match their schema.
    ("a claim without a usable id is decided, its event_id null", orjson.dumps(a_claim(claim_id=None)),
     ("returned", [("event.invalid_field", "claim_id")])),
    ("an order whose id is too long is decided, its event_id null", orjson.dumps(an_order(order_id="O" * 65)),
     ("returned", [("event.invalid_field", "order_id")])),
    # Values checked for what they mean, not only their shape.
    ("2025-11-31 is not on the calendar", orjson.dumps(a_claim(submitted_at="2025-11-31T10:00:00Z")),
     ("returned", [("date.invalid_datetime", "submitted_at")])),
    ("25:61:61 is not on the clock", orjson.dumps(a_claim(submitted_at="2025-11-03T25:61:61Z")),
     ("returned", [("date.invalid_datetime", "submitted_at")])),
    ("a dotless i upper-cases to I: ı10 is not I10", diagnosis("\u013110"),
     ("returned", [("diagnosis.malformed", "diagnoses[0].code")])),
    ("a control character is not trimmed away", diagnosis("E11.9\x1c"),
     ("returned", [("diagnosis.malformed", "diagnoses[0].code")])),
    ("a no-break space is not trimmed away", diagnosis("\u00a0E11.9"),
     ("returned", [("diagnosis.malformed", "diagnoses[0].code")])),
    ("a line separator is not trimmed away", diagnosis("E11.9\u2028"),
     ("returned", [("diagnosis.malformed", "diagnoses[0].code")])),
    ("ASCII spaces around a code are trimmed", diagnosis(" E11.9 "), ("accepted", [])),
    ("a payer's internal code is printable ASCII too", claim_line(code="X100\t", system="ACME-INTERNAL"),
     ("returned", [("procedure.malformed", "lines[0].code")])),
    ("a modifier's pattern ends at the end of the text, not before a final newline",
     claim_line(modifiers=["RT\n"]), ("returned", [("event.invalid_field", "lines[0].modifiers[0]")])),
    ("a date's pattern too", claim_line(service_date="2025-11-03\n"),
     ("returned", [("event.invalid_field", "lines[0].service_date")])),
    ("a modifier the loaded list does not hold is returned", claim_line(modifiers=["ZZ"]),
     ("returned", [("modifier.invalid", "lines[0].modifiers[0]")])),
    ("a modifier ended before the date of service is returned", claim_line(modifiers=["GD"]),
     ("returned", [("modifier.invalid", "lines[0].modifiers[0]")])),
    ("an unknown modifier is named even when the line's code cannot be checked",
     claim_line(code="E0114", system="HCPCS", modifiers=["ZZ"]),
     ("returned", [("procedure.not_in_table", "lines[0].code"), ("modifier.invalid", "lines[0].modifiers[0]")])),
    ("a birth date 225 years back is returned", orjson.dumps(a_claim(patient=born("1800-11-03"))),
     ("returned", [("date.birth_too_early", "patient.birth_date")])),
    ("on an order the lab asks the doctor", orjson.dumps(an_order(patient=born("1800-11-03"))),
     ("needs_review", [("date.birth_too_early", "patient.birth_date")])),
    ("two lines with one number are returned",
     orjson.dumps(a_claim(lines=[line("99213"), line("36415", number=1)])),
     ("returned", [("line.duplicate_number", "lines[1].line_number")])),
]  # fmt: skip


@pytest.mark.parametrize(("why", "raw", "expected"), HOSTILE, ids=[case[0] for case in HOSTILE])
def test_each_hostile_class_gets_its_answer(why, raw, expected):
    got = answer(raw, WatchedWindow(30 * DAY_MS))
    outcome, detail = expected
    if outcome == "dead":
        assert isinstance(got, str) and detail in got, (why, got)
        return
    assert isinstance(got, dict), (why, got)
    assert (got["outcome"], [(r["id"], r["field"]) for r in got["reasons"]]) == (outcome, detail), why


def test_a_decision_without_a_usable_id_matches_its_schema():
    record = answer(orjson.dumps(a_claim(claim_id=None)))
    assert isinstance(record, dict) and record["event_id"] is None  # the schema allows it: validated in answer()


def test_no_message_quotes_a_birth_date():
    record = answer(orjson.dumps(a_claim(patient=born("1800-11-03"))))
    assert isinstance(record, dict)
    assert all("1800" not in reason["message"] for reason in record["reasons"])


def test_the_window_sees_only_real_submission_times():
    window = WatchedWindow(30 * DAY_MS)  # fails the test if a claim reaches it with any other
    for submitted in ("9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "2025-11-31T10:00:00Z", None):
        record = answer(orjson.dumps(a_claim(claim_id="CLM-9", submitted_at=submitted)), window)
        assert isinstance(record, dict) and record["outcome"] == "returned"
    assert len(window) == 0
    answer(orjson.dumps(a_claim(claim_id="CLM-9")), window)
    assert len(window) == 1


# Unbounded cost: the worker's limits apply in ``processor check``; the validator stops at the first size error.


def test_a_huge_line_in_check_is_refused_by_its_size_without_being_held():
    huge = orjson.dumps(a_claim(lines=[line("99213", number=n % 999 + 1) for n in range(75_000)]))
    assert len(huge) > 9_500_000  # the 9.5 MB line
    data = huge + b"\n" + orjson.dumps(a_claim()) + b"\n"
    started = time.process_time()
    out = [orjson.loads(text) for _, text in check_lines(read_lines(io.BytesIO(data)), TABLE, DECIDED_AT)]
    assert time.process_time() - started < 2
    assert out[0] == {"line": 1, "outcome": "undecodable", "error": f"record is {len(huge)} bytes; the limit is "
                      f"{MAX_BYTES}"}  # fmt: skip
    assert out[1]["outcome"] == "accepted" and out[1]["source"] == {"line": 2}


@pytest.mark.parametrize(
    ("why", "changes", "problem"),
    [
        ("200,000 lines", {"lines": [line("99213")] * 200_000}, SchemaProblem("lines", "[200000 items]",
                                                                             "must have at most 450 items")),
        ("a 9 MB claim_id", {"claim_id": "X" * 9_000_000}, SchemaProblem("claim_id", "X" * 64 + "...",
                                                                         "must have at most 64 characters")),
        ("200,000 diagnoses of the wrong type", {"diagnoses": [[1.5]] * 200_000},
         SchemaProblem("diagnoses", "[200000 items]", "must have at most 25 items")),
    ],
)  # fmt: skip
def test_the_validator_stops_at_the_first_size_error(why, changes, problem):
    event = a_claim(**changes)
    started = time.process_time()
    problems = schema_problems(event, "claim")
    assert time.process_time() - started < 0.5, why
    assert problems == [problem], why  # the size error ends the search


# The property: hostile variants of the sample events.

EVENTS = samples.generate(60, seed=13, bad_share=0.2)
NASTY_CHARACTERS = ["\u0131", "\u017f", "\u212a", "\u00a0", "\u2028", "\u200b", "\ufeff", "\x00", "\x1c", "\t",
                    "\n", "\r", "\u00e9", "\u2160", "\U0001f600"]  # fmt: skip
BAD_DATES = ["2025-02-30", "2025-11-31", "0000-00-00", "1800-01-01", "0001-01-01", "9999-12-31", "2025-11-03\n",
             "2025-11-3", "20251103", "2025-W45-1", "2025-11-03T10:00:00Z", ""]  # fmt: skip
BAD_DATETIMES = ["2025-11-31T10:00:00Z", "2025-11-03T25:61:61Z", "9999-12-31T23:59:59-14:00",
                 "0001-01-01T00:00:00+14:00", "2025-11-03T10:00:00Z\n", "2025-11-03T10:00:00", "2025-11-03T23:59:60Z",
                 "2025-11-03T10:00:00+24:00", "1899-12-31T23:59:59Z", "2200-01-01T00:00:00Z", "2025-11-03"]  # fmt: skip
DATE_FIELDS = {"birth_date", "service_date", "collection_date", "admission_date", "discharge_date", "date"}
HOSTILE_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([1.0, 0.0, -0.0, 1e308, 2.5, 999.0]), st.text(st.characters(codec="utf-8"), max_size=40),
    st.sampled_from(BAD_DATES),
    st.sampled_from(BAD_DATETIMES), st.sampled_from(["X" * 65, "X" * 70_000, "ZZ", "RT\n", "\u013110"]),
    st.lists(st.integers(0, 30), max_size=5), st.dictionaries(st.sampled_from("abc"), st.none(), max_size=3),
)  # fmt: skip


def paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path into ``value``: ``("lines", 0, "code")``."""
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += paths(child, (*prefix, index))
    return found


def parent_of(event: dict[str, Any], path: tuple) -> Any:
    target: Any = event
    for step in path[:-1]:
        target = target[step]
    return target


@st.composite
def hostile_records(draw: st.DrawFn) -> bytes:
    """A sample claim or order with one to three hostile changes, as the bytes of a record."""
    kind, event = draw(st.sampled_from(EVENTS))
    event = orjson.loads(orjson.dumps(event))  # a copy
    nest = grow = 0
    for _ in range(draw(st.integers(1, 3))):
        every = [p for p in paths(event) if p]
        path = draw(st.sampled_from(every))
        parent, last = parent_of(event, path), path[-1]
        mutation = draw(st.sampled_from(["value", "character", "date", "float", "duplicate", "modifiers", "grow",
                                         "nest", "delete"]))  # fmt: skip
        strings = [p for p in every if isinstance(parent_of(event, p)[p[-1]], str)]
        lines = event.get("lines") if isinstance(event.get("lines"), list) else []
        dict_lines = [item for item in lines if isinstance(item, dict)]
        if mutation == "value":
            parent[last] = draw(HOSTILE_VALUES)
        elif mutation == "character" and strings:
            at = draw(st.sampled_from(strings))
            char = draw(st.sampled_from(NASTY_CHARACTERS) | st.characters(codec="utf-8"))
            text = parent_of(event, at)[at[-1]]
            cut = draw(st.integers(0, len(text)))
            parent_of(event, at)[at[-1]] = text[:cut] + char + text[cut:]
        elif mutation == "date":
            dates = [p for p in every if p[-1] in DATE_FIELDS] + ([("submitted_at",)] if kind == "claim" else [])
            at = draw(st.sampled_from(dates)) if dates else path
            parent_of(event, at)[at[-1]] = draw(st.sampled_from(BAD_DATETIMES if at == ("submitted_at",) else
                                                                BAD_DATES + BAD_DATETIMES))  # fmt: skip
        elif mutation == "float":
            numbers = [p for p in every if type(parent_of(event, p)[p[-1]]) is int]
            if numbers:
                at = draw(st.sampled_from(numbers))
                parent_of(event, at)[at[-1]] = float(parent_of(event, at)[at[-1]])
        elif mutation == "duplicate" and dict_lines:
            lines.append(dict(draw(st.sampled_from(dict_lines))))
        elif mutation == "modifiers" and dict_lines:
            chosen = draw(st.sampled_from(dict_lines))
            chosen["modifiers"] = draw(st.lists(st.sampled_from(["ZZ", "RT\n", "rt", "59", "XS", "25", "GD", "LT",
                                                                 "\u01311", 5]), max_size=5))  # fmt: skip
        elif mutation == "grow":  # last, so that the other changes need not walk a huge event
            grow = draw(st.sampled_from([2, 13, 451, 3000]))
        elif mutation == "nest" and not nest:
            nest = draw(st.sampled_from([3, MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 1, 300, 1100]))
            parent[last] = "NEST"
        elif mutation == "delete" and isinstance(parent, dict):
            del parent[last]
    field = "lines" if event.get("lines") else "diagnoses" if "diagnoses" in event else "tests"
    if grow and isinstance(event.get(field), list) and event[field]:
        event[field] = event[field] * grow
    raw = orjson.dumps(event)
    if nest:
        raw = raw.replace(b'"NEST"', b"[" * nest + b"]" * nest, 1)
    damage = draw(st.sampled_from(["none"] * 15 + ["bom", "cut", "garbage", "invalid utf-8", "carriage return"]))
    if damage == "bom":
        raw = codecs.BOM_UTF8 + raw
    elif damage == "cut":
        raw = raw[: draw(st.integers(0, len(raw)))]
    elif damage == "garbage":
        raw += draw(st.binary(max_size=8))
    elif damage == "invalid utf-8":
        cut = draw(st.integers(0, len(raw)))
        raw = raw[:cut] + b"\xff" + raw[cut:]
    elif damage == "carriage return":
        raw += b"\r"
    return raw


SETTINGS = Settings(max_record_bytes=65_536)
ROUTER = Router(SETTINGS.topics, TABLE, None, SETTINGS.max_record_bytes)
OUTPUTS = {SETTINGS.topics.accepted, SETTINGS.topics.returned, SETTINGS.topics.needs_review}
INPUTS = [SETTINGS.topics.claims, SETTINGS.topics.orders]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(raw=hostile_records(), topic=st.sampled_from(INPUTS))
def test_every_hostile_record_gets_one_decision_or_one_dead_letter(raw, topic):
    record = ConsumerRecord(topic, 0, 7, 0, 0, None, raw, None, 0, len(raw), ())
    out: list = []
    ROUTER.route(record, DECIDED_AT, out, WatchedWindow(30 * DAY_MS))
    answers = [message for message in out if message[0] in OUTPUTS | {SETTINGS.topics.dead_letter}]
    assert len(answers) == 1, out
    topic_out, _key, value, _partition = answers[0]
    written = orjson.loads(value)
    if topic_out == SETTINGS.topics.dead_letter:
        DEAD_LETTER.validate(written)
        assert DEAD_LETTER_ERRORS.fullmatch(written["error"]), written["error"]
    else:
        DECISION.validate(written)
        assert topic_out.endswith(written["outcome"].replace("_", "-"))
        assert written["outcome"] == "accepted" or written["reasons"]
        if written["outcome"] == "accepted":
            assert_meaningful(written["event"])


def assert_meaningful(event: dict[str, Any]) -> None:
    """What an accepted event must be beyond its shape: codes in printable ASCII with nothing trimmed but ASCII
    spaces, a real submission time, line numbers used once, a patient no older than 124."""
    lines = event.get("lines", [])
    coded = [*event.get("diagnoses", []), *event.get("tests", []), *lines, *event.get("procedures", [])]
    for code in [item["code"] for item in coded] + [m for item in lines for m in item.get("modifiers", [])]:
        assert code.strip(" ").isascii() and code.strip(" ").isprintable(), code
    if "claim_id" in event:
        assert real_datetime(event["submitted_at"]) is not None
        assert len({item["line_number"] for item in lines}) == len(lines)
    assert event["patient"]["birth_date"] > "1890"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(records=st.lists(hostile_records(), min_size=1, max_size=4), bom=st.booleans(), blank=st.booleans())
def test_check_answers_every_line_of_a_hostile_file(records, bom, blank):
    data = (codecs.BOM_UTF8 if bom else b"") + b"\n".join([*records, b"   "] if blank else records) + b"\n"
    lines = io.BytesIO(data).readlines()
    first = lines[0].removeprefix(codecs.BOM_UTF8)
    wanted = [n for n, text in enumerate([first, *lines[1:]], start=1) if text.strip()]
    got = [orjson.loads(text) for _, text in check_lines(read_lines(io.BytesIO(data), 65_536), TABLE, DECIDED_AT,
                                                         max_bytes=65_536)]  # fmt: skip
    assert [r["line"] if r["outcome"] == "undecodable" else r["source"]["line"] for r in got] == wanted
    for record in got:
        if record["outcome"] == "undecodable":
            assert set(record) == {"line", "outcome", "error"}
            assert DEAD_LETTER_ERRORS.fullmatch(record["error"]), record["error"]
        else:
            DECISION.validate(record)


def test_a_bom_before_the_first_line_is_skipped_and_the_line_decided():
    data = codecs.BOM_UTF8 + orjson.dumps(a_claim()) + b"\n"
    (out,) = [orjson.loads(text) for _, text in check_lines(read_lines(io.BytesIO(data)), TABLE, DECIDED_AT)]
    assert out["outcome"] == "accepted"


# ``processor check`` as a command: one line on stderr and an exit code, never a traceback.


def run_check(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "processor", "check", *args, "--no-default-table", "--demo-codes"]
    return subprocess.run(command, input=stdin, capture_output=True, timeout=120)


def one_line_on_stderr(result: subprocess.CompletedProcess) -> str:
    stderr = result.stderr.decode()
    assert "Traceback" not in stderr and stderr.count("\n") == 1, stderr
    return stderr


def test_a_missing_file_is_one_line_and_exit_2(tmp_path):
    result = run_check(str(tmp_path / "nowhere.jsonl"))
    assert result.returncode == 2 and result.stdout == b""
    assert "nowhere.jsonl: No such file or directory" in one_line_on_stderr(result)


def test_a_directory_is_one_line_and_exit_2(tmp_path):
    result = run_check(str(tmp_path))
    assert result.returncode == 2
    assert "Is a directory" in one_line_on_stderr(result)


def test_a_bom_file_and_hostile_lines_through_the_command(tmp_path):
    path = tmp_path / "batch.jsonl"
    bad_time = orjson.dumps(a_claim(claim_id="CLM-2", submitted_at="2025-11-31T10:00:00Z"))
    lines = [codecs.BOM_UTF8 + orjson.dumps(a_claim()), nested(300), b"x" * 300_000, bad_time]
    path.write_bytes(b"\n".join(lines) + b"\n")
    result = run_check(str(path))
    assert result.returncode == 0, result.stderr
    out = [orjson.loads(text) for text in result.stdout.splitlines()]
    assert [r["outcome"] for r in out] == ["needs_review", "undecodable", "undecodable", "returned"]
    assert out[2] == {"line": 3, "outcome": "undecodable", "error": "record is 300000 bytes; the limit is 262144"}
    assert out[3]["reasons"][0]["id"] == "date.invalid_datetime"


def test_a_closed_pipe_is_one_line_and_exit_141(tmp_path):
    path = tmp_path / "many.jsonl"
    path.write_bytes(b"".join(orjson.dumps(event) + b"\n" for _, event in samples.generate(2000, seed=3)))
    command = [sys.executable, "-m", "processor", "check", str(path), "--no-default-table", "--demo-codes"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        assert process.stdout is not None and process.stderr is not None
        process.stdout.read(100)  # like ``| head -c 100``
        process.stdout.close()
        stderr = process.stderr.read().decode()
        code = process.wait(timeout=120)
    assert code == 141
    assert "Traceback" not in stderr and stderr.count("\n") == 1 and "output was closed" in stderr, stderr


def test_a_bad_csv_row_stops_check_with_one_line_naming_it(tmp_path):
    codes = tmp_path / "payer-codes.csv"
    codes.write_text("system,code,description,billable,valid_from,valid_to\nCPT,99213,,true,01/01/2030,\n")
    result = run_check(str(tmp_path / "unused.jsonl"), "--codes", str(codes))
    assert result.returncode == 2
    assert "payer-codes.csv row 2, column valid_from: '01/01/2030' is not a calendar date" in one_line_on_stderr(result)


# CSV code rows: dates parsed, and a bad row named by file, row and column.

HEADER = "system,code,description,billable,valid_from,valid_to"
BAD_CSV = [
    ("a US-style date would compare as text", f"{HEADER}\nCPT,99213,,true,01/01/2030,\n",
     "row 2, column valid_from: '01/01/2030' is not a calendar date as YYYY-MM-DD"),
    ("a date not on the calendar", f"{HEADER}\nCPT,99213,,true,2024-01-01,2024-02-30\n",
     "row 2, column valid_to: '2024-02-30' is not a calendar date"),
    ("a short row", f"{HEADER}\nCPT,99213,,true\n", "row 2, column valid_from: missing (the row has 4 cells"),
    ("a long row", f"{HEADER}\nCPT,99213,,true,2024-01-01,,extra\n", "row 2: 7 cells, but the header has 6"),
    ("rows are the file's lines, comments counted", f"# one\n# two\n{HEADER}\nCPT,99213,,true,2024-13-01,\n",
     "row 4, column valid_from"),
    ("a missing code", f"{HEADER}\nCPT,,,true,2024-01-01,\n", "row 2, column code: is required"),
    ("a code that is not printable ASCII", f"{HEADER}\nICD-10-CM,\u013110,,true,2024-01-01,\n",
     "row 2, column code: 'ı10' is not printable ASCII"),
    ("an age that is not a whole number", f"{HEADER},age_min\nCPT,99381,,true,2024-01-01,,ten\n",
     "row 2, column age_min: 'ten' is not an age"),
    ("a sex the table cannot read", f"{HEADER},sex\nCPT,55700,,true,2024-01-01,,Male\n", "row 2, column sex"),
    ("units that are not a number", "policy,code,max_units,valid_from,valid_to\nmue,36415,two,2024-01-01,\n",
     "row 2, column max_units: 'two' is not a number"),
    ("an MUE adjudication indicator CMS has not", "policy,code,max_units,valid_from,valid_to,mai\n"
     "mue,36415,2,2024-01-01,,4\n", "row 2, column mai: '4' is not one of 1, 2, 3"),
    ("an NCCI modifier indicator CMS has not", "policy,column1,column2,modifier_indicator,valid_from,valid_to\n"
     "ncci,93000,93005,2,2024-01-01,\n", "row 2, column modifier_indicator: '2' is not one of 0, 1, 9"),
    ("an NCCI table CMS has not", "policy,column1,column2,modifier_indicator,valid_from,valid_to,table\n"
     "ncci,93000,93005,0,2024-01-01,,facility\n", "row 2, column table: 'facility'"),
    ("a release without its last day", "policy,system,release,valid_from,valid_to\nrelease,CPT,2026,2026-01-01,\n",
     "row 2, column valid_to: is required"),
    ("bad quoting", f'{HEADER}\n"CPT"x,99213,,true,2024-01-01,\n', "row 2: not CSV as quoted"),
]  # fmt: skip


@pytest.mark.parametrize(("why", "text", "message"), BAD_CSV, ids=[case[0] for case in BAD_CSV])
def test_a_bad_csv_row_is_an_error_naming_file_row_and_column(tmp_path, why, text, message):
    path = tmp_path / "payer-codes.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(f"{path} {message}")):
        list(read_csv(path))


def test_a_csv_file_that_is_not_utf8_is_named(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes(f"{HEADER}\nCPT,99213,caf\xe9,true,2024-01-01,\n".encode("latin-1"))
    with pytest.raises(ValueError, match=re.escape(f"{path} row 2: not UTF-8 text")):
        list(read_csv(path))


def test_a_csv_file_with_a_bom_loads_as_without(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes(codecs.BOM_UTF8 + f"{HEADER}\nCPT,99213,,true,2024-01-01,\n".encode())
    assert [key for key, _ in read_csv(path)] == ["CPT|99213|2024-01-01"]


def test_processor_load_csv_names_a_bad_row_before_connecting(tmp_path):
    from processor.cli import main

    path = tmp_path / "payer-codes.csv"
    path.write_text(f"{HEADER}\nCPT,99213,,true,01/01/2030,\n")
    with pytest.raises(SystemExit, match=re.escape(f"processor load csv: {path} row 2, column valid_from")):
        main(["load", "csv", str(path), "--bootstrap-servers", "127.0.0.1:1"])


def test_the_record_carries_the_input_as_it_came_in():
    """The decision record embeds the input's bytes, not a re-encoding: key order and number forms stay as
    sent; the whitespace JSON allows around the object is left out; a byte order mark is no JSON (dead letter);
    duplicate keys stay as sent, and the event was decided on the last of each, as JSON parsers read it."""
    claim = orjson.dumps(a_claim()).replace(b'"units":1', b'"units": 1E0')  # orjson would write "units":1.0
    for raw in (claim, b" \r\n\t" + claim + b"\n "):
        result = decide_value(raw, None, TABLE, None, DECIDED_AT, {"line": 1})
        assert not isinstance(result, Refused)
        assert b'"event":' + claim + b"," in result.value
        DECISION.validate(orjson.loads(result.value))
    assert str(answer(codecs.BOM_UTF8 + claim)).startswith("not valid UTF-8 JSON: UTF-8 byte order mark")
    twice = b'{"claim_type":"outpatient",' + claim[1:-1] + b',"claim_type":"inpatient"}'
    record = answer(twice)
    assert isinstance(record, dict) and record["event"]["claim_type"] == "inpatient"
    assert record["outcome"] == "returned"  # an inpatient claim without its stay
