"""The content check (duplicate scope "topic", the default): a claim's decision is held on the claims-by-content
topic, on the partition its content picks, and published by the content check of that partition, so that a
repeat finds the first claim whatever claims partition each came in on. No broker: the messages are what the
worker hands its producer, and a held message is routed again as the record the worker would read back
(tests/integration/test_worker.py runs it through Kafka). The answers are those of one window over every
claim: ``processor check``'s."""

from __future__ import annotations

import orjson

from processor.config import Settings
from processor.engine.duplicates import SeenClaims, fingerprint
from processor.routing import Received, Router
from tests.conftest import a_claim, an_order
from tests.unit import test_formats
from tests.unit.test_formats import fixture
from tests.unit.test_schemas import validator

codes = test_formats.table  # the formats tests' table: the small table and the fixtures' real codes
TOPICS = Settings().topics
DECIDED_AT = "2025-11-05T15:00:01.000Z"
WINDOW_MS = 30 * 86_400_000
CONTENT_PARTITIONS = 6
OUTCOMES = {TOPICS.accepted: "accepted", TOPICS.returned: "returned", TOPICS.needs_review: "needs_review"}


class Pipeline:
    """Two routing steps as the worker runs them, with one window per claims-by-content partition."""

    def __init__(self, table) -> None:
        self.router = Router(TOPICS, table, None, None, content_check=True)
        self.windows = {n: SeenClaims(WINDOW_MS) for n in range(CONTENT_PARTITIONS)}
        self.offsets = dict.fromkeys(range(CONTENT_PARTITIONS), 0)

    def submit(self, claim: dict, partition: int, offset: int) -> tuple[list, list]:
        """Route a claim read on claims ``partition``: what is counted there, and its messages."""
        out: list = []
        record = Received(TOPICS.claims, partition, offset, 1_762_354_800_000, b"key", orjson.dumps(claim))
        return self.router.route(record, DECIDED_AT, out), out

    def check(self, held: tuple) -> tuple[list, list]:
        """Route a held message as the record read back from its claims-by-content partition."""
        topic, key, value, number = held
        assert topic == TOPICS.claims_by_content
        partition = number % CONTENT_PARTITIONS
        offset = self.offsets[partition] = self.offsets[partition] + 1
        out: list = []
        record = Received(topic, partition, offset, 1_762_354_800_000, key, value)
        return self.router.route(record, "2025-11-05T15:00:02.000Z", out, self.windows[partition]), out

    def decide(self, claim: dict, partition: int, offset: int) -> tuple[dict, tuple]:
        """Both steps: the published decision record and its message."""
        counted, out = self.submit(claim, partition, offset)
        assert counted == [] and len(out) == 1
        counted, out = self.check(out[0])
        (published,) = [m for m in out if m[0] in OUTCOMES]
        assert len(counted) == 1 and counted[0].outcome == OUTCOMES[published[0]]
        return orjson.loads(published[2]), published


def test_a_claims_decision_is_held_by_content_then_published_as_it_was_decided(small_table):
    pipeline, claim = Pipeline(small_table), a_claim()
    counted, out = pipeline.submit(claim, partition=3, offset=1207)
    (held,) = out
    assert counted == [] and held[0] == TOPICS.claims_by_content and held[1] == b"CLM-1"
    assert held[3] == int(fingerprint(claim)[:8], 16)
    record = orjson.loads(held[2])
    validator("held-claim").validate(record)
    assert record["partition"] == 3 and record["fingerprint"] == fingerprint(claim)

    counted, out = pipeline.check(held)
    (published,) = [m for m in out if m[0] in OUTCOMES]
    (entry,) = [m for m in out if m[0] == TOPICS.seen_contents]
    validator("window-entry").validate(orjson.loads(entry[2]))
    assert entry[3] == held[3] % CONTENT_PARTITIONS and entry[1] == b"CLM-1"
    # Published on the claim's own partition number, with its key, as the bytes the first step decided.
    assert published[:2] == (TOPICS.accepted, b"CLM-1") and published[3] == 3
    assert orjson.loads(published[2]) == record["decision"]
    by_partition, direct = Router(TOPICS, small_table, None, None), []
    by_partition.route(Received(TOPICS.claims, 3, 1207, 1_762_354_800_000, b"key", orjson.dumps(claim)),
                       DECIDED_AT, direct)  # fmt: skip
    assert published[2] == direct[0][2]


def test_a_repeat_on_another_claims_partition_is_a_suspect_naming_the_first_claim(small_table):
    pipeline = Pipeline(small_table)
    first, _ = pipeline.decide(a_claim(claim_id="CLM-1"), partition=0, offset=10)
    repeat = a_claim(claim_id="CLM-2", submitted_at="2025-11-04T09:00:00Z")
    second, message = pipeline.decide(repeat, partition=4, offset=11)
    assert first["outcome"] == "accepted" and second["outcome"] == "needs_review" and message[3] == 4
    (reason,) = second["reasons"]
    assert reason["id"] == "claim.suspect_duplicate" and reason["value"] == "CLM-2"
    validator("decision").validate(second)

    # The same answer as one window over both partitions gives (``processor check``'s way), byte for byte.
    window, router, out = SeenClaims(WINDOW_MS), Router(TOPICS, small_table, None, None), []
    for claim, partition, offset in ((a_claim(claim_id="CLM-1"), 0, 10), (repeat, 4, 11)):
        record = Received(TOPICS.claims, partition, offset, 1_762_354_800_000, b"key", orjson.dumps(claim))
        router.route(record, DECIDED_AT, out, window)
    assert [m for m in out if m[0] in OUTCOMES][-1][2] == message[2]


def test_the_same_claim_sent_on_two_claims_partitions_is_an_exact_duplicate(small_table):
    pipeline = Pipeline(small_table)
    pipeline.decide(a_claim(), partition=1, offset=5)
    again, message = pipeline.decide(a_claim(submitted_at="2025-11-03T11:00:00Z"), partition=2, offset=9)
    assert again["outcome"] == "returned" and message[0] == TOPICS.returned and message[3] == 2
    assert [r["id"] for r in again["reasons"]] == ["claim.duplicate"]


def test_a_corrected_claim_and_a_claim_of_other_content_are_no_duplicates(small_table):
    pipeline = Pipeline(small_table)
    pipeline.decide(a_claim(), partition=0, offset=1)
    other_patient = a_claim(claim_id="CLM-9", patient={"birth_date": "1970-01-01", "sex": "M"})
    corrected = a_claim(diagnoses=[{"code": "I10", "system": "ICD-10-CM"}])
    for offset, claim in enumerate((other_patient, corrected), start=2):
        decision, _ = pipeline.decide(claim, partition=5, offset=offset)
        assert decision["outcome"] == "accepted", decision["reasons"]


def test_a_held_record_read_again_at_its_place_is_no_duplicate_of_itself(small_table):
    """A content check replayed after its transaction aborted reads the same record at the same offset."""
    pipeline = Pipeline(small_table)
    _, (held,) = pipeline.submit(a_claim(), partition=0, offset=1)
    partition = held[3] % CONTENT_PARTITIONS
    for _ in range(2):
        out: list = []
        record = Received(TOPICS.claims_by_content, partition, 7, 0, held[1], held[2])
        pipeline.router.route(record, DECIDED_AT, out, pipeline.windows[partition])
        assert [m[0] for m in out if m[0] in OUTCOMES] == [TOPICS.accepted]


def test_orders_and_claims_without_a_usable_submission_time_are_published_at_once(small_table):
    pipeline = Pipeline(small_table)
    out: list = []
    order = Received(TOPICS.orders, 2, 3, 0, None, orjson.dumps(an_order()))
    counted = pipeline.router.route(order, DECIDED_AT, out)
    assert len(counted) == 1 and [m[0] for m in out] == [TOPICS.accepted]
    counted, out = pipeline.submit(a_claim(submitted_at="2025-11-31T10:00:00Z"), partition=2, offset=4)
    assert counted[0].outcome == "returned" and [m[0] for m in out] == [TOPICS.returned]


def test_a_record_on_the_content_topic_that_is_not_a_held_decision_is_dead_lettered(small_table):
    pipeline = Pipeline(small_table)
    for value in (b"not json", b'{"claim_id": "CLM-1"}', None):
        out: list = []
        record = Received(TOPICS.claims_by_content, 0, 3, 0, b"k", value)
        assert pipeline.router.route(record, DECIDED_AT, out, pipeline.windows[0]) == [None]
        (letter,) = out
        assert letter[0] == TOPICS.dead_letter
        error = orjson.loads(letter[2])["error"]
        assert error.startswith("not a held claim decision") and "CLM-1" not in error


def test_the_claims_of_an_837_are_held_and_its_answers_go_out_at_once(codes):
    router = Router(TOPICS, codes, None, None, content_check=True)
    out: list = []
    record = Received(TOPICS.claims, 3, 1207, 1_762_354_800_000, b"key", fixture("837p-50-claims.x12"))
    counted = router.route(record, DECIDED_AT, out)
    held = [m for m in out if m[0] == TOPICS.claims_by_content]
    published = [m for m in out if m[0] in OUTCOMES]
    assert len(held) == 50 and published == [] and counted == []  # counted by their content checks
    assert {orjson.loads(m[2])["partition"] for m in held} == {3}
    assert [orjson.loads(m[2])["type"] for m in out if m[0] == TOPICS.responses] == ["999", "277CA"]
