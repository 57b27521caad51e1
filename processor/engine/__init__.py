"""The engine: every coding rule, and nothing but them. Pure functions of an event and a code table.

``decide(event, kind, table, policy=None) -> Decision`` is the one entry point; the Kafka worker,
``processor check`` and the benchmark all call it. ``load_policy`` reads a payer's rules file once, at
start; the engine itself does no I/O.
"""

from processor.engine.decide import decide
from processor.engine.decision import Decision, Reason
from processor.engine.policy import DEFAULT_POLICY, Policy, load_policy, policy_from
from processor.engine.rules import RULES, Outcome, Rule

__all__ = ["DEFAULT_POLICY", "RULES", "Decision", "Outcome", "Policy", "Reason", "Rule", "decide", "load_policy",
           "policy_from"]  # fmt: skip
