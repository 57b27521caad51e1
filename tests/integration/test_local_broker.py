"""The project's own Kafka node (``processor.kafka.broker``): a node that cannot bind a listener fails to start
at once, and leaves no process behind, instead of answering half started."""

from __future__ import annotations

import socket

import pytest

from processor.kafka.broker import LocalBroker

pytestmark = pytest.mark.kafka


def test_a_node_whose_controller_port_is_taken_fails_to_start_and_leaves_no_process():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        broker = LocalBroker(controller_port=taken.getsockname()[1])
        try:
            with pytest.raises(RuntimeError, match="Address already in use"):
                broker.start(timeout=60)
            assert broker.process is None or broker.process.poll() is not None
        finally:
            broker.remove()
