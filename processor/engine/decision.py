"""What the engine answers: a ``Decision`` for one event, with a ``Reason`` for every edit that failed, and
the record of it that is published (``schemas/decision.schema.json``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from processor.engine.rules import Outcome, Rule


@dataclass(frozen=True, slots=True)
class Reason:
    """Why an event was not accepted: which rule, which field and value, what to do, and (for needs-review)
    what the reviewer should check. The rule gives the answer codes."""

    rule: Rule
    field: str
    value: Any
    message: str
    outcome: Outcome
    review: str | None = None

    @property
    def id(self) -> str:
        return self.rule.id

    @property
    def category(self) -> str:
        return self.rule.category

    @property
    def carc(self) -> str | None:
        return self.rule.carc

    @property
    def rarc(self) -> str | None:
        return self.rule.rarc

    def as_dict(self) -> dict[str, Any]:
        """The reason as it appears in a decision record."""
        rule = self.rule
        return {
            "id": rule.id, "field": self.field, "value": self.value, "message": self.message,
            "outcome": self.outcome.value, "category": rule.category, "carc": rule.carc, "rarc": rule.rarc,
            "review": self.review,
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
