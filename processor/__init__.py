"""Medical-coding stream processor.

Claims and lab orders come in on Kafka topics, every code on them is checked against an in-memory code
table kept current from a compacted topic, and each event leaves on exactly one of the accepted, returned
and needs-review topics.

Where to look:
- ``processor.engine``      the rules: event + code-table snapshot -> decision (pure, no I/O)
- ``processor.code_table``  the table, its sources (ICD-10-CM releases, CSV) and the Kafka follower
- ``processor.kafka``       the worker, the local broker, topic admin
- ``processor.contracts``   the JSON Schemas and decoding of raw records
- ``processor.cli``         the ``processor`` command
"""

__version__ = "0.1.0"
