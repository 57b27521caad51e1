"""The demo's log filter: only the one-node broker's verification retries leave its output."""

from __future__ import annotations

import logging

from processor.demo import _SingleNodeRetries


def _record(message: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord("aiokafka.producer.sender", logging.WARNING, __file__, 1, message, args, None)


def test_the_demo_drops_only_not_enough_replicas_retries():
    keep = _SingleNodeRetries().filter
    retried = "Got error produce response on topic-partition %s, retrying. Error: %s"
    assert not keep(_record(retried, "decisions.accepted-5", "<class 'aiokafka.errors.NotEnoughReplicasError'>"))
    assert keep(_record(retried, "decisions.accepted-5", "<class 'aiokafka.errors.RequestTimedOutError'>"))
    assert keep(_record("Unexpected error in sender routine"))
