"""The group's assignor deals partition numbers: one member owns partition n of every input topic."""

import pytest
from aiokafka.coordinator.protocol import ConsumerProtocolMemberMetadata

from processor.kafka.assignor import PartitionNumberAssignor


class Partitions:
    """The one thing an assignor asks of the cluster metadata: the partitions of a topic."""

    def __init__(self, **counts: int) -> None:
        self.counts = counts

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return set(range(self.counts[topic])) if topic in self.counts else None


def assign(cluster: Partitions, subscriptions: dict[str, list[str]]) -> dict[str, set[tuple[str, int]]]:
    members = {m: PartitionNumberAssignor.metadata(topics) for m, topics in subscriptions.items()}
    result = PartitionNumberAssignor.assign(cluster, members)
    return {m: {(topic, p) for topic, ps in a.assignment for p in ps} for m, a in result.items()}


CASES = [
    # (why, partitions per topic, members) -- every member reads both topics
    ("one member owns everything", {"claims": 6, "lab-orders": 6}, ["a"]),
    ("two members split the numbers", {"claims": 6, "lab-orders": 6}, ["a", "b"]),
    ("four members on six numbers: two get two, two get one", {"claims": 6, "lab-orders": 6}, ["a", "b", "c", "d"]),
    ("more members than numbers: the rest are idle", {"claims": 2, "lab-orders": 2}, ["a", "b", "c"]),
    ("topics with different partition counts", {"claims": 12, "lab-orders": 6}, ["a", "b", "c"]),
]  # fmt: skip


@pytest.mark.parametrize(("why", "counts", "names"), CASES, ids=[c[0] for c in CASES])
def test_every_partition_is_owned_once_and_a_number_by_one_member(why, counts, names):
    owned = assign(Partitions(**counts), {m: sorted(counts) for m in names})
    every = [(topic, p) for topic, n in counts.items() for p in range(n)]
    assert sorted(tp for tps in owned.values() for tp in tps) == sorted(every)  # each exactly once
    owner_of_number: dict[int, str] = {}
    for member, tps in owned.items():
        for _, number in tps:
            assert owner_of_number.setdefault(number, member) == member, f"partition {number} split"
    loads = [len({n for _, n in tps}) for tps in owned.values()]
    assert max(loads) - min(loads) <= 1  # numbers dealt evenly


def test_a_topic_a_member_does_not_read_goes_to_one_that_does():
    owned = assign(Partitions(claims=4, **{"lab-orders": 4}), {"a": ["claims"], "b": ["claims", "lab-orders"]})
    assert {tp for tp in owned["a"]} == {("claims", 0), ("claims", 2)}
    assert {tp for tp in owned["b"]} == {("claims", 1), ("claims", 3), *(("lab-orders", n) for n in range(4))}


def test_unknown_topics_are_left_out():
    owned = assign(Partitions(claims=2), {"a": ["claims", "missing"], "b": ["claims", "missing"]})
    assert owned == {"a": {("claims", 0)}, "b": {("claims", 1)}}


def test_the_members_protocol_metadata_carries_the_subscription():
    metadata = PartitionNumberAssignor.metadata(["claims", "lab-orders"])
    assert isinstance(metadata, ConsumerProtocolMemberMetadata)
    assert sorted(metadata.subscription) == ["claims", "lab-orders"]
