"""``processor check`` on a submitter's file: an 837, an HL7 v2 message, a FHIR resource, decided event by event,
with the answers written beside (999 and 277CA, ACK or ORL^O22, ClaimResponse or OperationOutcome)."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from processor.check import check_document, read_lines, sniff
from processor.formats import Format, validate_x12
from tests.unit import test_formats
from tests.unit.test_formats import CLAIM_OUTCOMES_837P, FIXTURES, RETURNED_837P, fixture
from tests.unit.test_schemas import validator

DECIDED_AT = "2025-11-05T15:00:00.000Z"

# What the default table and the demo rows lack of the 837P's codes: two CPT codes and CMS's pair of 93000 and
# 93005 (the planted NCCI mistake).
EXTRA_CODES = (
    "system,code,description,billable,valid_from,valid_to\nCPT,90686,,true,2024-01-01,\nCPT,93005,,true,2024-01-01,\n"
)
NCCI_PAIR = "policy,column1,column2,modifier_indicator,valid_from,valid_to\nncci,93000,93005,0,2024-01-01,\n"


def run_check(*args: str, stdin: bytes | None = None) -> tuple[list[dict], str]:
    result = subprocess.run(
        [sys.executable, "-m", "processor", "check", *args], input=stdin, capture_output=True, check=True, timeout=120
    )
    return [orjson.loads(line) for line in result.stdout.splitlines()], result.stderr.decode()


def decide(name: str, form: Format, table, **options) -> tuple[list[dict], dict[str, bytes]]:
    checked = check_document(fixture(name), form, name, table, DECIDED_AT, **options)
    records = [orjson.loads(line) for _, line in checked.results]
    for record in records:
        if record["outcome"] != "undecodable":
            validator("decision").validate(record)  # its source too: file and index
    return records, checked.responses


def segments(x12: bytes) -> list[list[str]]:
    return [segment.split("*") for segment in x12.decode().split("~\n") if segment]


# An 837: a decision for each claim, the 999 and the 277CA.


def test_an_837p_file_gives_a_decision_per_claim_and_its_999_and_277ca(tmp_path):
    (tmp_path / "extra.csv").write_text(EXTRA_CODES)
    (tmp_path / "ncci.csv").write_text(NCCI_PAIR)
    answers = tmp_path / "answers"
    out, summary = run_check(
        str(FIXTURES / "837p-50-claims.x12"), "--demo-codes", "--codes", str(tmp_path / "extra.csv"),
        "--codes", str(tmp_path / "ncci.csv"), "--responses", str(answers),
    )  # fmt: skip
    assert len(out) == 50
    assert [record["source"] for record in out] == [{"file": "837p-50-claims.x12", "index": i} for i in range(50)]
    by_id = {record["event_id"]: record for record in out}
    for claim_id, _outcome, reasons in CLAIM_OUTCOMES_837P:
        if claim_id in RETURNED_837P:  # the planted mistakes, returned with the rule the format tests name
            assert by_id[claim_id]["outcome"] == "returned", claim_id
            assert [r["id"] for r in by_id[claim_id]["reasons"]] == [rule for rule, _, _ in reasons], claim_id
    assert by_id["MGF0251109"]["outcome"] == "accepted" and by_id["MGF0251109"]["lines_denied"] == [3]
    # E08.9 first-listed: CMS's MCE lists (the default table) make it a manifestation, not just code-first.
    assert by_id["MGF0251117"]["outcome"] != "accepted"
    named = {claim_id for claim_id, _, _ in CLAIM_OUTCOMES_837P}
    assert all(record["outcome"] == "accepted" for claim_id, record in by_id.items() if claim_id not in named)
    counts: dict[str, int] = {}
    for record in out:
        counts[record["outcome"]] = counts.get(record["outcome"], 0) + 1
    assert summary.strip().splitlines()[-1] == ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items()))

    assert sorted(path.name for path in answers.iterdir()) == ["837p-50-claims.277ca", "837p-50-claims.999"]
    ack = (answers / "837p-50-claims.999").read_bytes()
    assert b"IK3*DTP*347*2400*8~" in ack and b"AK9*E*1*1*1~" in ack
    assert next(s for s in segments(ack) if s[0] == "ISA")[13] == "000004711"  # the 837's ISA13
    claim_ack = (answers / "837p-50-claims.277ca").read_bytes()
    assert next(s for s in segments(claim_ack) if s[0] == "ISA")[13] == "000004712"
    returned = {record["event_id"] for record in out if record["outcome"] == "returned"}
    assert returned >= RETURNED_837P
    stcs: dict[str, str] = {}
    claim = None
    for segment in segments(claim_ack):
        if segment[0] == "TRN" and segment[1] == "2":
            claim = segment[2]
        elif segment[0] == "STC" and claim is not None and claim not in stcs:
            stcs[claim] = segment[3]
    for claim_id in returned:  # every returned claim named by its CLM01, with action code U
        assert stcs[claim_id] == "U", claim_id
    assert validate_x12(ack.decode()) == []


BROKEN = [
    ("SE01 miscounts the transaction set", fixture("837p-50-claims.x12").replace(b"SE*918*", b"SE*917*"),
     ["IK5*R*4", "AK9*R*1*1*0"], "transaction set 0001 rejected"),
    ("the ISA is cut short", fixture("837p-50-claims.x12")[:60], ["TA1*000000000*251105*1500*R*022"],
     "interchange rejected"),
]  # fmt: skip


@pytest.mark.parametrize(("why", "raw", "expected", "error"), BROKEN, ids=[case[0] for case in BROKEN])
def test_a_broken_837_gives_an_undecodable_line_and_its_rejection(why, raw, expected, error, small_table):
    checked = check_document(raw, Format.X12, "day.x12", small_table, DECIDED_AT)
    assert [outcome for outcome, _ in checked.results] == ["undecodable"]
    line = orjson.loads(checked.results[0][1])
    assert line["file"] == "day.x12" and error in line["error"]
    assert "FITZGERALD" not in line["error"] and "K219" not in line["error"]  # never the content
    assert list(checked.responses) == [".999"]  # no claim read: no 277CA, but never silence
    for segment in expected:
        assert (
            f"{segment}~".encode() in checked.responses[".999"] or f"{segment}*".encode() in checked.responses[".999"]
        )


def test_a_broken_837_through_the_command_writes_its_999(tmp_path):
    path = tmp_path / "day.x12"
    path.write_bytes(fixture("837p-50-claims.x12").replace(b"SE*918*", b"SE*917*"))
    out, summary = run_check(str(path), "--no-default-table", "--responses", str(tmp_path / "answers"))
    assert [record["outcome"] for record in out] == ["undecodable"]
    assert summary.strip().endswith("1 undecodable")
    assert sorted(p.name for p in (tmp_path / "answers").iterdir()) == ["day.999"]
    assert b"IK5*R*4~" in (tmp_path / "answers" / "day.999").read_bytes()


def test_format_json_on_an_837_gives_undecodable_lines_not_a_crash(tmp_path):
    raw = fixture("837i-3-claims.x12")
    out, _ = run_check(str(FIXTURES / "837i-3-claims.x12"), "--no-default-table", "--format", "json")
    assert len(out) == sum(1 for line in raw.splitlines() if line.strip())
    assert {record["outcome"] for record in out} == {"undecodable"}
    assert out[0]["line"] == 1


codes = test_formats.table  # the formats tests' table: the small table and the fixtures' real codes


def test_duplicates_within_a_document_use_the_window(codes):
    raw = fixture("837i-3-claims.x12")
    text = raw.decode()
    start, end = text.index("ST*837"), text.index("GE*")
    second = text[start:end].replace("ST*837*0001", "ST*837*0002").replace("SE*84*0001", "SE*84*0002")
    twice = (text[:end] + second + text[end:]).replace("GE*1*882", "GE*2*882").encode()
    checked = check_document(twice, Format.X12, "twice.x12", codes, DECIDED_AT)
    records = [orjson.loads(line) for _, line in checked.results]
    assert len(records) == 6
    assert all("duplicate" not in str(r["reasons"]) for r in records[:3])
    # Each claim the first set took into adjudication is sent again by the second; a returned one was not kept.
    taken = [r["outcome"] != "returned" for r in records[:3]]
    assert taken.count(True) == 2
    again = [any(reason["id"] == "claim.duplicate" for reason in r["reasons"]) for r in records[3:]]
    assert again == taken
    without = check_document(twice, Format.X12, "twice.x12", codes, DECIDED_AT, duplicate_window_days=0)
    assert all("duplicate" not in str(orjson.loads(line)["reasons"]) for _, line in without.results)


# HL7 v2: an ACK for an ORM, an ORL^O22 for an OML.


def test_an_orm_gives_order_decisions_and_an_ack_rejecting_with_err(small_table):
    records, responses = decide("orm-o01.hl7", Format.HL7V2, small_table)
    assert [(r["event_id"], r["outcome"]) for r in records] == [("MGF-LAB-77001", "accepted"),
                                                                 ("MGF-LAB-77002", "returned")]  # fmt: skip
    assert records[1]["reasons"][0]["id"] == "test.malformed"
    assert records[1]["source"] == {"file": "orm-o01.hl7", "index": 1}
    ack = responses[".ack.hl7"].decode().split("\r")
    assert "|20251105150000||ACK^O01^ACK|AMGF-ORM-000123|P|2.5.1" in ack[0]
    assert ack[1] == "MSA|AR|MGF-ORM-000123"
    assert ack[2].startswith("ERR||OBR^2^4^1^1|102^Data type error^HL70357|E|test.malformed|")


def test_an_oml_is_answered_with_an_orl_o22(small_table):
    records, responses = decide("oml-o21.hl7", Format.HL7V2, small_table)
    assert [r["outcome"] for r in records] == ["needs_review", "returned"]
    orl = responses[".ack.hl7"].decode().split("\r")
    assert "|ORL^O22^ORL_O22|" in orl[0] and orl[1] == "MSA|AR|PCC-OML-20251104-0042"
    assert "ORC|UA|PCC-90442^PRAIRIECC" in orl


def test_an_hl7_message_that_cannot_be_read_is_rejected_with_ar(small_table):
    raw = fixture("orm-o01.hl7").replace(b"ORM^O01^ORM_O01", b"ADT^A01^ADT_A01")
    checked = check_document(raw, Format.HL7V2, "adt.hl7", small_table, DECIDED_AT)
    assert [outcome for outcome, _ in checked.results] == ["undecodable"]
    assert "WHITAKER" not in orjson.loads(checked.results[0][1])["error"]
    assert checked.responses[".ack.hl7"].decode().split("\r")[1] == "MSA|AR|MGF-ORM-000123"


def test_an_order_too_large_to_decide_is_undecodable_and_its_message_rejected(small_table):
    records, responses = decide("orm-o01.hl7", Format.HL7V2, small_table, max_bytes=10)
    assert [(r["outcome"], r["index"]) for r in records] == [("undecodable", 0), ("undecodable", 1)]
    ack = responses[".ack.hl7"].decode().split("\r")
    assert ack[1] == "MSA|AR|MGF-ORM-000123" and ack[2].startswith("ERR|||207^Application internal error")


def test_hl7_from_stdin_through_the_command(tmp_path):
    out, summary = run_check(
        "-", "--no-default-table", "--demo-codes", "--responses", str(tmp_path), stdin=fixture("oml-o21.hl7")
    )
    assert [record["source"] for record in out] == [{"file": "stdin", "index": 0}, {"file": "stdin", "index": 1}]
    assert b"|ORL^O22^ORL_O22|" in (tmp_path / "stdin.ack.hl7").read_bytes()
    assert summary.strip().endswith("1 needs_review, 1 returned")


# FHIR: a ClaimResponse for a Claim, an OperationOutcome for a ServiceRequest or a body that cannot be read.


def test_a_fhir_claim_gets_a_claim_response(small_table):
    records, responses = decide("fhir-claim.json", Format.FHIR, small_table)
    assert len(records) == 1 and records[0]["outcome"] == "returned"
    assert "diagnosis.header" in [r["id"] for r in records[0]["reasons"]]
    response = orjson.loads(responses[".response.json"])
    assert response["resourceType"] == "ClaimResponse" and response["outcome"] == "error"
    assert response["created"] == "2025-11-05T15:00:00Z"


def test_a_fhir_service_request_gets_an_operation_outcome(small_table):
    records, responses = decide("fhir-service-request.json", Format.FHIR, small_table)
    assert [r["reasons"][0]["id"] for r in records] == ["npi.invalid"]
    assert orjson.loads(responses[".response.json"])["resourceType"] == "OperationOutcome"


def test_a_fhir_body_that_cannot_be_read_gets_a_fatal_operation_outcome(small_table):
    checked = check_document(b'{"resourceType": "Patient"}', Format.FHIR, "p.json", small_table, DECIDED_AT)
    assert [outcome for outcome, _ in checked.results] == ["undecodable"]
    outcome = orjson.loads(checked.responses[".response.json"])
    assert outcome["resourceType"] == "OperationOutcome" and outcome["issue"][0]["severity"] == "fatal"


def test_the_same_document_gives_the_same_answers(small_table):
    for name, form in (("837p-50-claims.x12", Format.X12), ("oml-o21.hl7", Format.HL7V2),
                       ("fhir-claim.json", Format.FHIR)):  # fmt: skip
        assert decide(name, form, small_table)[1] == decide(name, form, small_table)[1]


# Auto-detection.

SNIFF_CASES = [
    ("837p-50-claims.x12", Format.X12), ("837i-3-claims.x12", Format.X12), ("orm-o01.hl7", Format.HL7V2),
    ("oml-o21.hl7", Format.HL7V2), ("fhir-claim.json", Format.FHIR), ("fhir-service-request.json", Format.FHIR),
]  # fmt: skip


@pytest.mark.parametrize(("name", "expected"), SNIFF_CASES)
def test_auto_detection_picks_each_format_and_rereads_from_the_start(name, expected):
    raw = fixture(name)
    found, stream = sniff(io.BufferedReader(io.BytesIO(raw)))
    assert found is expected
    assert stream.read() == raw


@pytest.mark.parametrize(
    "raw", [b'{"claim_id": "CLM-1"}\n{"order_id": "O-1"}\n', b"not json\n{}\n", b"", b"\xef\xbb\xbf{}\n"]
)
def test_anything_else_is_json_lines_as_before(raw):
    found, stream = sniff(io.BufferedReader(io.BytesIO(raw)))
    assert found is Format.JSON
    assert list(read_lines(stream)) == list(read_lines(io.BytesIO(raw)))


def test_a_long_json_lines_file_is_read_whole_after_sniffing(tmp_path):
    raw = b"".join(orjson.dumps({"claim_id": f"CLM-{n}", "pad": "x" * 500}) + b"\n" for n in range(400))
    assert len(raw) > 1 << 17
    path = Path(tmp_path / "many.jsonl")
    path.write_bytes(raw)
    with path.open("rb") as source:
        found, stream = sniff(source)
        assert found is Format.JSON and stream.read() == raw


def test_an_837p_with_a_claim_its_replacement_and_a_repeat_through_processor_check(codes):
    """Issue 23 through ``processor check`` on an 837P: in a file a claim's control number is ``F`` and its place
    in the file, which a later replacement names (REF*F8); the 277CA gives the accepted claims theirs (REF*1K)."""
    from processor.formats.build import write_837p
    from tests.unit.test_member_check import billed

    claims = [
        billed("A"),
        billed("E", charge="120.00", frequency="replacement", replaces="F0"),
        billed("F"),  # A's charge again: A was replaced, so it is the same service as E with another charge
        billed("X", member="W9", frequency="replacement", replaces="F9"),  # names no claim of the file
    ]
    for claim in claims:
        claim["lines"][0]["diagnosis_pointers"] = [1]
    checked = check_document(write_837p(claims), Format.X12, "replaced.x12", codes, DECIDED_AT)
    records = {(r := orjson.loads(line))["event_id"]: r for _, line in checked.results}
    answers = {k: (r["outcome"], [x["id"] for x in r["reasons"]]) for k, r in records.items()}
    assert answers == {
        "A": ("accepted", []),
        "E": ("accepted", []),
        "F": ("needs_review", ["claim.suspect_duplicate"]),
        "X": ("needs_review", ["claim.replaces_unknown"]),
    }
    assert records["A"]["claim_control_number"] == "F0"
    ack = checked.responses[".277ca"].decode()
    assert "REF*1K*F0~" in ack and "REF*1K*F1~" in ack
    assert validate_x12(ack) == []  # pyx12 finds the 277CA conforms to 005010X214


@pytest.mark.parametrize(
    ("why", "change", "rule_id", "stc"),
    [
        ("CLM02 is not the sum of the SV102s", {"charge": "100.00"}, "claim.unbalanced", "A7:400"),
        ("an unknown place of service", {"place_of_service": "30"}, "place_of_service.not_in_table", "A7:249"),
        (
            "a rendering NPI with a bad check digit",
            {"rendering_provider": {"npi": "1234567890"}},
            "npi.rendering_invalid",
            "A7:562:82",
        ),
        ("no member id", {"member": None}, "member.missing", "A6:164:IL"),
    ],
    ids=lambda value: value if isinstance(value, str) and " " in value else None,
)
def test_an_837p_claim_a_payers_front_end_returns_gets_its_277ca_status(codes, why, change, rule_id, stc):
    """Issue 23: each written as an 837P, read back, decided and answered; pyx12 finds the 999 and 277CA valid."""
    from processor.formats.build import write_837p
    from tests.unit.test_member_check import billed

    claim = billed("PCC1")
    claim["lines"][0]["diagnosis_pointers"] = [1]
    claim.update({k: v for k, v in change.items() if v is not None})
    for name in (k for k, v in change.items() if v is None):
        del claim[name]
    checked = check_document(write_837p([claim]), Format.X12, "returned.x12", codes, DECIDED_AT)
    (record,) = [orjson.loads(line) for _, line in checked.results]
    assert record["outcome"] == "returned" and [r["id"] for r in record["reasons"]] == [rule_id]
    ack = checked.responses[".277ca"].decode()
    assert f"STC*{stc.replace(':', '>')}" in ack or f"STC*{stc}" in ack, ack
    assert "REF*1K" not in ack  # returned: no payer claim control number
    if rule_id != "member.missing":  # an NM1*IL without its id is a syntax error the 999 names too
        assert validate_x12(ack) == [] and validate_x12(checked.responses[".999"].decode()) == []
