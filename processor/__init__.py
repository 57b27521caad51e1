"""Medical-coding stream processor.

Claims and lab orders come in on Kafka topics, every code on them is checked against an in-memory code
table kept current from a compacted topic, and each event leaves on exactly one of the accepted, returned
and needs-review topics.

Where to look, bottom to top (a package imports only from its own layer or below; tests/unit/test_layers.py):
- ``config``, ``code_systems``, ``contracts``, ``samples``  settings, code systems, schemas and decoding
- ``processor.code_table``  the table as data and its sources (ICD-10-CM releases, CMS files, CSV)
- ``processor.engine``      the rules: event + code-table snapshot -> decision (pure, no I/O)
- ``processor.routing``     what one input record becomes: its decision record or a dead letter
- ``processor.kafka``       the transport: clients, topics, reading to the end, the code-table topic, delivery
- ``processor.app``         the worker loop, offset ledger, rebalances, duplicate windows, metrics, health
- ``processor.cli``         the ``processor`` command (with ``demo``, ``check`` and ``bench``)
"""

__version__ = "0.1.0"
