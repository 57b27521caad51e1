"""A payer's policy: the outcome of each rule, per kind of event, or the rule switched off.

The rules file is TOML (read once at start by ``load_policy``; ``decide`` itself never reads a file):

    [rules]                       # both claims and lab orders
    "diagnosis.sex_conflict" = "off"

    [claim]                       # claims only; wins over [rules]
    "coverage.not_supported" = "returned"

    [order]                       # lab orders only; wins over [rules]
    "npi.invalid" = "returned"

    [claim]
    "ncci.bundled" = "returned"   # return the claim instead of denying the bundled line
    "procedure.not_in_table" = "denied"   # deny the line instead of returning the claim

Each value is "returned", "needs_review", "denied" or "off". "denied" denies the claim line the rule fires on
(the claim goes on, accepted; an 835 would carry the line's adjustment with group code CO); only rules that
fire on claim lines can deny (``Rule.lines``), and lab orders, which have no lines, keep their outcome.
A rule not named keeps its default outcome
(``rules.RULES``). An unknown section, rule id or value is an error that names it, so a typo never
silently leaves a rule at its default.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from processor.engine.rules import RULES, Outcome

KINDS = ("claim", "order")
_VALUES = {"returned": Outcome.RETURNED, "needs_review": Outcome.NEEDS_REVIEW, "denied": Outcome.DENIED, "off": None}


@dataclass(frozen=True)
class Policy:
    """Outcome of every rule for each kind (None: the rule is off). Build with ``policy_from`` or
    ``load_policy``; ``DEFAULT_POLICY`` is the rules' declared defaults."""

    name: str
    outcomes: Mapping[str, Mapping[str, Outcome | None]] = field(repr=False)

    def outcome(self, rule_id: str, kind: str) -> Outcome | None:
        """The outcome of ``rule_id`` on an event of ``kind``; None when the payer switched it off."""
        return self.outcomes[kind][rule_id]


def policy_from(settings: Mapping[str, Any], name: str = "custom") -> Policy:
    """A policy from the parsed rules file (a mapping of sections to ``{rule id: value}``)."""
    unknown = set(settings) - {"rules", *KINDS}
    if unknown:
        raise ValueError(f"rules file: unknown section(s) {sorted(unknown)}; use [rules], [claim] or [order]")
    outcomes = {kind: {rule.id: rule.outcome_for(kind) for rule in RULES.values()} for kind in KINDS}
    for section in ("rules", *KINDS):
        entries = settings.get(section, {})
        if not isinstance(entries, Mapping):
            raise ValueError(f"rules file: [{section}] must be a table of rule ids")
        for rule_id, value in entries.items():
            if rule_id not in RULES:
                raise ValueError(f"rules file: [{section}] names an unknown rule {rule_id!r}")
            if value not in _VALUES:
                raise ValueError(
                    f"rules file: [{section}] {rule_id} = {value!r}; use 'returned', 'needs_review', 'denied' or 'off'"
                )
            if value == "denied" and (section == "order" or not RULES[rule_id].lines):
                raise ValueError(
                    f"rules file: [{section}] {rule_id} = 'denied': only a rule that fires on a claim line can deny "
                    "the line (a lab order has none); use 'returned' or 'needs_review'"
                )
            for kind in KINDS if section == "rules" else (section,):
                if not (value == "denied" and kind == "order"):  # an order has no lines: it keeps its default
                    outcomes[kind][rule_id] = _VALUES[value]
    return Policy(name, outcomes)


def load_policy(path: str | Path) -> Policy:
    """The policy in the TOML rules file at ``path`` (``PROCESSOR_RULES_FILE``); raises ValueError on a bad
    file, naming the problem."""
    path = Path(path)
    try:
        settings = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"rules file {path}: not valid TOML: {err}") from None
    return policy_from(settings, name=path.name)


DEFAULT_POLICY = policy_from({}, name="default")
