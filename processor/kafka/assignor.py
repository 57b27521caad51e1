"""Partition assignment by partition number: whoever owns ``claims-3`` owns ``lab-orders-3`` too.

The worker writes each decision to the output partition with the number of its input partition, and
exactly-once delivery uses one transactional producer per partition number (``processor.kafka.delivery``).
So every output partition has one writer, and a committed decision becomes visible to ``read_committed``
readers as soon as its own transaction ends; with several writers per output partition, a decision also
waits for every transaction that another producer opened there before it committed, and under a steady
stream those overlap without end.

That needs the group to hand out partition *numbers*, not topic partitions: this assignor deals the
numbers round-robin to the members (sorted by member id), and each member gets that number's partition of
every topic it subscribes to. Kafka Streams assigns co-partitioned topics the same way. Every member of
the group must use it: the coordinator refuses a member that offers no assignor in common with the group.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping

from aiokafka.cluster import ClusterMetadata
from aiokafka.coordinator.assignors.abstract import AbstractPartitionAssignor
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment, ConsumerProtocolMemberMetadata

log = logging.getLogger(__name__)


class PartitionNumberAssignor(AbstractPartitionAssignor):
    """Deals partition numbers round-robin; a member gets a number's partition of every topic it reads.

    Guarantee (members with the same subscription, as the processor's workers have): for every number n,
    one member owns partition n of every subscribed topic that has it. A topic a member does not read goes
    to the next member that does, which keeps every partition owned when subscriptions differ.
    """

    name = "processor-partition-number"
    version = 0

    @classmethod
    def assign(
        cls, cluster: ClusterMetadata, members: Mapping[str, ConsumerProtocolMemberMetadata]
    ) -> dict[str, ConsumerProtocolMemberAssignment]:
        topics = sorted({topic for metadata in members.values() for topic in metadata.subscription})
        topics_of: dict[int, list[str]] = defaultdict(list)  # partition number -> the topics that have it
        for topic in topics:
            partitions = cluster.partitions_for_topic(topic)
            if partitions is None:
                log.warning("no partition metadata for topic %s", topic)
                continue
            for number in partitions:
                topics_of[number].append(topic)
        order = sorted(members)
        assignment: dict[str, dict[str, list[int]]] = {member: defaultdict(list) for member in order}
        for number in sorted(topics_of):
            for topic in topics_of[number]:
                for step in range(len(order)):
                    member = order[(number + step) % len(order)]
                    if topic in members[member].subscription:
                        assignment[member][topic].append(number)
                        break
        return {
            member: ConsumerProtocolMemberAssignment(cls.version, sorted(assignment[member].items()), b"")
            for member in order
        }

    @classmethod
    def metadata(cls, topics: Iterable[str]) -> ConsumerProtocolMemberMetadata:
        return ConsumerProtocolMemberMetadata(cls.version, list(topics), b"")

    @classmethod
    def on_assignment(cls, assignment: ConsumerProtocolMemberAssignment) -> None:
        """Nothing to remember: the assignment depends only on the members and the partition counts."""
