"""The transport: thin wrappers around aiokafka, with no rule and no application logic.

- ``clients``           client options (TLS, SASL) and the access check
- ``topics``            creating the processor's topics; waiting for a topic's partitions
- ``reading``           reading a topic to its end
- ``code_table_topic``  following, reading and publishing the compacted code-table topic
- ``delivery``          the ``Delivery`` contract: exactly-once transactions, or at-least-once
- ``assignor``          the partition-number assignor that exactly-once relies on
- ``broker``            a local single-node Apache Kafka (KRaft) from the official jars, for the demo and tests
"""
