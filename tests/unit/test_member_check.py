"""The member check (duplicate scope "topic", the default): the decision of a claim taken into adjudication is
held on the claims-by-member topic, on the partition its member hash picks, and published by the member check of
that partition, so that all of a member's claims, replacements and voids meet whatever claims partition each
came in on. No broker: the messages are what the worker hands its producer, and a held message is routed again
as the record the worker would read back (tests/integration/test_worker.py runs it through Kafka). The answers
are those of one window over every claim: ``processor check``'s.

Issue 23's cases: two members with one birth date, sex, provider, code and day are two accepted claims; the same
member's claim resent under a new claim id is an exact duplicate; one differing only in charge a potential
duplicate; a replacement of a held claim is accepted and replaces it; a void removes it; a replacement of an
unknown claim goes to review."""

from __future__ import annotations

import orjson

from processor.config import Settings
from processor.engine.duplicates import SeenClaims
from processor.routing import Received, Router
from tests.conftest import a_claim, an_order
from tests.unit.test_engine import line
from tests.unit.test_schemas import validator

TOPICS = Settings().topics
DECIDED_AT = "2025-11-05T15:00:01.000Z"
WINDOW_MS = 30 * 86_400_000
MEMBER_PARTITIONS = 6
OUTCOMES = {TOPICS.accepted: "accepted", TOPICS.returned: "returned", TOPICS.needs_review: "needs_review"}


def billed(claim_id: str, member: str = "W100000001", charge: str = "95.00", **changes: object) -> dict:
    """A claim of ``member`` for 99213 on 2025-11-03 by the same office, with its charges."""
    return a_claim(claim_id=claim_id, member={"id": member, "payer_id": "PAYER01"}, charge=charge,
                   place_of_service="11", lines=[line("99213", pointers=(1, 2), charge=charge)], **changes)  # fmt: skip


class Pipeline:
    """Two routing steps as the worker runs them, with one window per claims-by-member partition."""

    def __init__(self, table) -> None:
        self.router = Router(TOPICS, table, None, None, member_check=True)
        self.windows = {n: SeenClaims(WINDOW_MS) for n in range(MEMBER_PARTITIONS)}
        self.offsets = dict.fromkeys(range(MEMBER_PARTITIONS), 0)
        self.changelog: list[tuple] = []

    def submit(self, claim: dict, partition: int, offset: int) -> tuple[list, list]:
        """Route a claim read on claims ``partition``: what is counted there, and its messages."""
        out: list = []
        record = Received(TOPICS.claims, partition, offset, 1_762_354_800_000, b"key", orjson.dumps(claim))
        return self.router.route(record, DECIDED_AT, out), out

    def check(self, held: tuple) -> tuple[list, list]:
        """Route a held message as the record read back from its claims-by-member partition."""
        topic, key, value, number = held
        assert topic == TOPICS.claims_by_member
        partition = number % MEMBER_PARTITIONS
        offset = self.offsets[partition] = self.offsets[partition] + 1
        out: list = []
        record = Received(topic, partition, offset, 1_762_354_800_000, key, value)
        counted = self.router.route(record, "2025-11-05T15:00:02.000Z", out, self.windows[partition])
        self.changelog += [m for m in out if m[0] == TOPICS.seen_members]
        return counted, out

    def decide(self, claim: dict, partition: int, offset: int) -> dict:
        """Both steps: the published decision record."""
        counted, out = self.submit(claim, partition, offset)
        assert counted == [] and len(out) == 1
        counted, out = self.check(out[0])
        (published,) = [m for m in out if m[0] in OUTCOMES]
        assert len(counted) == 1 and counted[0].outcome == OUTCOMES[published[0]]
        assert published[3] == partition  # on the claim's own partition number
        decision = orjson.loads(published[2])
        validator("decision").validate(decision)
        return decision


def reasons(decision: dict) -> list[tuple]:
    return [(r["id"], r["field"], r["value"]) for r in decision["reasons"]]


def test_a_claims_decision_is_held_by_member_then_published_as_it_was_decided(small_table):
    pipeline, claim = Pipeline(small_table), billed("CLM-1")
    counted, out = pipeline.submit(claim, partition=3, offset=1207)
    (held,) = out
    assert counted == [] and held[0] == TOPICS.claims_by_member and held[1] == b"CLM-1"
    record = orjson.loads(held[2])
    validator("held-claim").validate(record)
    assert record["partition"] == 3 and record["entry"]["control_number"] == "3-1207"
    assert "W100000001" not in orjson.dumps(record["entry"]).decode()  # the window's entry: hashes only
    assert record["decision"]["claim_control_number"] == "3-1207"
    assert held[3] == int(record["entry"]["member"][:8], 16)

    counted, out = pipeline.check(held)
    (published,) = [m for m in out if m[0] in OUTCOMES]
    (entry,) = [m for m in out if m[0] == TOPICS.seen_members]
    validator("window-entry").validate(orjson.loads(entry[2]))
    assert entry[3] == held[3] % MEMBER_PARTITIONS and entry[1] == b"3-1207"
    # Published on the claim's own partition number, with its key, as the bytes the first step decided.
    assert published[:2] == (TOPICS.accepted, b"CLM-1") and published[3] == 3
    assert orjson.loads(published[2]) == record["decision"]
    by_partition, direct = Router(TOPICS, small_table, None, None), []
    by_partition.route(Received(TOPICS.claims, 3, 1207, 1_762_354_800_000, b"key", orjson.dumps(claim)),
                       DECIDED_AT, direct)  # fmt: skip
    assert published[2] == direct[0][2]


def test_two_members_with_one_birth_date_sex_provider_code_and_day_are_two_accepted_claims(small_table):
    pipeline = Pipeline(small_table)
    first = pipeline.decide(billed("CLM-1", member="W100000001"), partition=0, offset=10)
    second = pipeline.decide(billed("CLM-2", member="W200000002"), partition=4, offset=11)
    assert (first["outcome"], second["outcome"]) == ("accepted", "accepted")


def test_the_same_members_claim_resent_under_a_new_id_on_another_partition_is_an_exact_duplicate(small_table):
    pipeline = Pipeline(small_table)
    pipeline.decide(billed("CLM-1"), partition=1, offset=5)
    again = pipeline.decide(billed("CLM-2", submitted_at="2025-11-04T11:00:00Z"), partition=2, offset=9)
    assert again["outcome"] == "returned" and reasons(again) == [("claim.duplicate", "claim_id", "CLM-2")]
    assert "claim 'CLM-1'" in again["reasons"][0]["message"] and "1-5" in again["reasons"][0]["message"]
    assert "claim_control_number" not in again  # returned: not taken into adjudication


def test_one_differing_only_in_charge_is_a_potential_duplicate_naming_the_claim_and_line(small_table):
    pipeline = Pipeline(small_table)
    pipeline.decide(billed("CLM-1"), partition=1, offset=5)
    other = pipeline.decide(billed("CLM-2", charge="110.00"), partition=3, offset=2)
    assert other["outcome"] == "needs_review"
    assert reasons(other) == [("claim.suspect_duplicate", "lines[0]", "99213")]
    (reason,) = other["reasons"]
    assert "line 1 of claim 'CLM-1'" in reason["message"] and "1-5" in reason["message"]
    assert reason["stc"] == {"category": "A2", "status": "78", "entity": None}


def test_a_line_repeated_exactly_beside_a_new_one_is_denied_and_the_claim_goes_on(small_table):
    pipeline = Pipeline(small_table)
    pipeline.decide(billed("CLM-1"), partition=1, offset=5)
    both = billed("CLM-2", charge="107.50")
    both["lines"] = [line("99213", pointers=(1,), charge="95.00"), line("36415", number=2, charge="12.50")]
    decision = pipeline.decide(both, partition=2, offset=3)
    assert decision["outcome"] == "accepted" and decision["lines_denied"] == [1]
    assert reasons(decision) == [("line.duplicate", "lines[0]", "99213")]
    assert decision["reasons"][0]["adjustment"] == {"group": "CO", "carc": "18", "rarc": None}


def test_repeat_and_other_site_modifiers_are_never_exact_duplicates(small_table):
    pipeline = Pipeline(small_table)
    pipeline.decide(billed("CLM-1"), partition=1, offset=5)
    for offset, modifiers in enumerate((("76",), ("91",), ("59",))):
        repeat = billed(f"CLM-{offset + 2}")
        repeat["lines"][0]["modifiers"] = list(modifiers)
        decision = pipeline.decide(repeat, partition=2, offset=offset)
        assert reasons(decision) == [("claim.suspect_duplicate", "lines[0]", "99213")], modifiers


def test_a_replacement_of_a_held_claim_is_accepted_and_replaces_it(small_table):
    pipeline = Pipeline(small_table)
    pipeline.decide(billed("CLM-1"), partition=1, offset=5)
    replacement = billed("CLM-1", charge="110.00", frequency="replacement", replaces="1-5")
    assert pipeline.decide(replacement, partition=2, offset=7)["outcome"] == "accepted"
    # The changelog says so: the replaced claim's tombstone, then the replacement's entry.
    assert [(m[1], m[2] is None) for m in pipeline.changelog[-2:]] == [(b"1-5", True), (b"2-7", False)]
    # The replaced claim is gone: its charge again is no longer a duplicate of it, but of the replacement.
    repeat = pipeline.decide(billed("CLM-3", charge="110.00"), partition=0, offset=9)
    assert reasons(repeat) == [("claim.duplicate", "claim_id", "CLM-3")] and "2-7" in repeat["reasons"][0]["message"]


def test_a_void_removes_the_claim_it_names(small_table):
    pipeline = Pipeline(small_table)
    pipeline.decide(billed("CLM-1"), partition=1, offset=5)
    void = pipeline.decide(billed("CLM-1", frequency="void", replaces="1-5"), partition=1, offset=6)
    assert void["outcome"] == "accepted"
    assert pipeline.decide(billed("CLM-2"), partition=5, offset=3)["outcome"] == "accepted"  # nothing held


def test_a_replacement_or_void_of_an_unknown_claim_goes_to_review(small_table):
    pipeline = Pipeline(small_table)
    for offset, frequency in enumerate(("replacement", "void")):
        decision = pipeline.decide(billed("CLM-7", frequency=frequency, replaces="9-999"), partition=2, offset=offset)
        assert decision["outcome"] == "needs_review"
        assert reasons(decision) == [("claim.replaces_unknown", "replaces", "9-999")]


def test_a_returned_claim_is_published_at_once_and_never_kept(small_table):
    pipeline = Pipeline(small_table)
    counted, out = pipeline.submit(billed("CLM-1", billing_provider={"npi": "1234567890"}), partition=0, offset=1)
    assert [m[0] for m in out] == [TOPICS.returned] and counted[0].outcome == "returned"
    # The corrected claim is no duplicate of it.
    assert pipeline.decide(billed("CLM-1"), partition=0, offset=2)["outcome"] == "accepted"


def test_orders_and_documents_are_not_held(small_table):
    pipeline = Pipeline(small_table)
    out: list = []
    record = Received(TOPICS.orders, 0, 1, 1_762_354_800_000, b"key", orjson.dumps(an_order()))
    pipeline.router.route(record, DECIDED_AT, out)
    assert [m[0] for m in out] == [TOPICS.accepted]


def test_the_member_check_answers_as_one_window_over_every_claim_does(small_table):
    claims = [
        (billed("CLM-1"), 0, 10),
        (billed("CLM-2", member="W200000002"), 1, 11),
        (billed("CLM-3", charge="110.00"), 2, 12),
        (billed("CLM-4"), 3, 13),
        (billed("CLM-1", charge="120.00", frequency="replacement", replaces="0-10"), 4, 14),
        (billed("CLM-6", frequency="void", replaces="1-11", member="W200000002"), 5, 15),
        (billed("CLM-7", member="W200000002"), 0, 16),
    ]
    pipeline = Pipeline(small_table)
    held = [orjson.dumps(pipeline.decide(claim, partition, offset)) for claim, partition, offset in claims]
    window, router, out = SeenClaims(WINDOW_MS), Router(TOPICS, small_table, None, None), []
    for claim, partition, offset in claims:
        record = Received(TOPICS.claims, partition, offset, 1_762_354_800_000, b"key", orjson.dumps(claim))
        router.route(record, DECIDED_AT, out, window)
    one_window = [m[2] for m in out if m[0] in OUTCOMES]
    assert [orjson.loads(v)["outcome"] for v in one_window] == [
        "accepted", "accepted", "needs_review", "returned",
        "needs_review",  # the replacement takes CLM-1's place, but CLM-3 (same service, charge 110) is still held
        "accepted", "accepted",  # the void removes CLM-2: CLM-7, the same service, repeats nothing held
    ]  # fmt: skip
    assert [orjson.loads(v)["reasons"] for v in held] == [orjson.loads(v)["reasons"] for v in one_window]
