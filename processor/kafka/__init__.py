"""The Kafka side: a thin shell around the engine.

- ``broker``  a local single-node Apache Kafka (KRaft) run from the official jars, for the demo and tests
- ``topics``  creating the processor's topics
- ``worker``  the consumer group that decides claims and orders and publishes decisions
"""
