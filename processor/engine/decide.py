"""The engine: one event and a code-table snapshot in, one decision out. Pure: no I/O, no clock.

``decide`` checks the event against its schema first (a broken structure halts the review, as it does for
a payer), then every code on it against the table on the date it was used, and the provider's NPI.
Each failed check becomes a ``Reason`` from ``rules.RULES``; the worst reason's outcome is the decision's.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date
from typing import Any

from processor import code_systems as codes
from processor.code_table.table import CodeTable, CodeVersion
from processor.contracts import event_id, schema_problems
from processor.engine.rules import RULES, SEVERITY, Outcome, Rule


@dataclass(frozen=True, slots=True)
class Reason:
    """Why an event was not accepted: which rule, which field and value, and what to do."""

    id: str
    field: str
    value: Any
    message: str
    outcome: Outcome
    category: str
    carc: str | None
    rarc: str | None

    def as_dict(self) -> dict[str, Any]:
        """The reason as it appears in a decision record."""
        return {
            "id": self.id, "field": self.field, "value": self.value, "message": self.message,
            "outcome": self.outcome.value, "category": self.category, "carc": self.carc, "rarc": self.rarc,
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class Decision:
    """The engine's answer for one event."""

    event_id: str | None
    kind: str
    outcome: Outcome
    reasons: tuple[Reason, ...]
    code_table_version: str

    def as_record(self, event: Any, decided_at: str, source: dict[str, Any] | None = None) -> dict[str, Any]:
        """The decision record published to an outcome topic (``schemas/decision.schema.json``)."""
        record = {
            "event_id": self.event_id,
            "kind": self.kind,
            "outcome": self.outcome.value,
            "reasons": [reason.as_dict() for reason in self.reasons],
            "code_table_version": self.code_table_version,
            "decided_at": decided_at,
            "event": event,
        }
        if source is not None:
            record["source"] = source
        return record


def decide(event: dict[str, Any], kind: str, table: CodeTable) -> Decision:
    """Decide one claim (``kind="claim"``) or lab order (``kind="order"``) against ``table``."""
    review = _Review(kind, table)
    problems = schema_problems(event, kind)
    if problems:
        for problem in problems:
            if problem.problem == "is required":
                review.fail("event.missing_field", problem.field, None)
            else:
                review.fail("event.invalid_field", problem.field, problem.value, problem=problem.problem)
    elif kind == "claim":
        _review_claim(event, review)
    else:
        _review_order(event, review)
    return review.conclude(event_id(event, kind))


def _review_claim(claim: dict[str, Any], review: _Review) -> None:
    review.npi("billing_provider.npi", claim["billing_provider"]["npi"])
    review.day("patient.birth_date", claim["patient"]["birth_date"])
    lines = claim["lines"]
    diagnoses = claim["diagnoses"]
    line_days: list[str | None] = [
        review.day(f"lines[{i}].service_date", line["service_date"]) for i, line in enumerate(lines)
    ]
    # A diagnosis must be valid on the dates of service of the lines that point at it; one that no line
    # points at, on the claim's first date of service.
    days_of: dict[int, set[str]] = {}
    for line, day in zip(lines, line_days, strict=True):
        for pointer in line.get("diagnosis_pointers", ()):
            if day is not None:
                days_of.setdefault(pointer - 1, set()).add(day)
    first_day = min((d for d in line_days if d is not None), default=None)
    for i, diagnosis in enumerate(diagnoses):
        days = sorted(days_of.get(i, ())) or [first_day]
        review.code("diagnosis", f"diagnoses[{i}]", diagnosis["system"], diagnosis["code"], days)
    for i, line in enumerate(lines):
        review.code("procedure", f"lines[{i}]", line["system"], line["code"], [line_days[i]])


def _review_order(order: dict[str, Any], review: _Review) -> None:
    review.npi("ordering_provider.npi", order["ordering_provider"]["npi"])
    review.day("patient.birth_date", order["patient"]["birth_date"])
    days = [review.day("collection_date", order["collection_date"])]
    for i, test in enumerate(order["tests"]):
        review.code("test", f"tests[{i}]", test["system"], test["code"], days)
    for i, diagnosis in enumerate(order["diagnoses"]):
        review.code("diagnosis", f"diagnoses[{i}]", diagnosis["system"], diagnosis["code"], days)


_ROLE_SYSTEMS = {
    "diagnosis": codes.DIAGNOSIS_SYSTEMS,
    "procedure": codes.PROCEDURE_SYSTEMS,
    "test": codes.TEST_SYSTEMS,
}
_NOT_BILLABLE = {"diagnosis": "diagnosis.header", "procedure": "procedure.not_billable", "test": "test.not_billable"}


class _Review:
    """The checks of one event, collecting reasons as they fail."""

    __slots__ = ("kind", "reasons", "table")

    def __init__(self, kind: str, table: CodeTable) -> None:
        self.kind = kind
        self.table = table
        self.reasons: list[Reason] = []

    def fail(self, rule_id: str, field: str, value: Any, **details: Any) -> None:
        rule: Rule = RULES[rule_id]
        message = rule.message.format(field=field, value=value, **details)
        self.reasons.append(
            Reason(rule.id, field, value, message, rule.outcome_for(self.kind), rule.category, rule.carc, rule.rarc)
        )

    def day(self, field: str, value: str) -> str | None:
        """The date in ``value`` when it is a real calendar date, else a reason and None."""
        if _is_calendar_date(value):
            return value
        self.fail("date.invalid", field, value)
        return None

    def npi(self, field: str, value: str) -> None:
        if not codes.is_valid_npi(value):
            self.fail("npi.invalid", field, value)

    def code(self, role: str, at: str, system: str, code: str, days: list[str | None]) -> None:
        """Check one coded field: its system, its form, and that the table has it, billable, on ``days``."""
        table = self.table
        allowed = _ROLE_SYSTEMS[role]
        internal = system not in codes.STANDARD_SYSTEMS and table.has_system(system)
        if system not in allowed and not internal:
            self.fail(f"{role}.system_unknown", f"{at}.system", system, expected=" or ".join(sorted(allowed)))
            return
        field = f"{at}.code"
        normalized = codes.normalize(system, code)
        if not codes.is_well_formed(system, normalized):
            self.fail(f"{role}.malformed", field, code, system=system, hint=codes.FORMAT_HINTS.get(system, ""))
            return
        if not table.has_system(system):
            self.fail(f"{role}.system_not_loaded", field, code, system=system)
            return
        versions = table.versions(system, normalized)
        if not versions:
            self.fail(f"{role}.not_in_table", field, code, system=system)
            return
        for day in days:
            version = _version_on(versions, day)
            if version is None:
                self.fail(f"{role}.not_valid_on_date", field, code, day=day, validity=_validity(versions))
                return
            if not version.billable:
                self.fail(_NOT_BILLABLE[role], field, code, system=system, description=version.description or "-")
                return

    def conclude(self, event_id: str | None) -> Decision:
        outcome = Outcome.ACCEPTED
        for reason in self.reasons:
            if SEVERITY[reason.outcome] > SEVERITY[outcome]:
                outcome = reason.outcome
        return Decision(event_id, self.kind, outcome, tuple(self.reasons), self.table.version)


def _version_on(versions: tuple[CodeVersion, ...], day: str | None) -> CodeVersion | None:
    """The version valid on ``day``; with no usable date, the newest version."""
    if day is None:
        return versions[-1]
    for version in versions:
        if version.covers(day):
            return version
    return None


def _validity(versions: tuple[CodeVersion, ...]) -> str:
    return "; ".join(f"valid {v.valid_from} to {v.valid_to or 'now'}" for v in versions)


@functools.lru_cache(maxsize=8192)
def _is_calendar_date(value: str) -> bool:
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return len(value) == 10
