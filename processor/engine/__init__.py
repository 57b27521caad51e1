"""The engine: every coding rule, and nothing but them. Pure functions of an event and a code table.

``decide(event, kind, table) -> Decision`` is the one entry point; the Kafka worker, ``processor check``
and the benchmark all call it.
"""

from processor.engine.decide import Decision, Reason, decide
from processor.engine.rules import RULES, Outcome, Rule

__all__ = ["RULES", "Decision", "Outcome", "Reason", "Rule", "decide"]
