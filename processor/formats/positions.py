"""Where a field of an event came from in the submitter's message, and how a reason's field finds it.

Each parser keeps a ``positions`` map from the event's field paths (``lines[2].code``, ``diagnoses[0].code``,
``billing_provider.npi``) to a position of its own format: an ``X12Position`` (loop, segment, element,
segment ordinal), an ``Hl7Position`` (segment, occurrence, field, component) or a FHIRPath expression. A
reason names a field of the event; ``position_of`` finds the nearest field that the map holds.
"""

from __future__ import annotations

from typing import Any, TypeVar

P = TypeVar("P")


def position_of(positions: dict[str, P], field: str) -> P | None:
    """The position of ``field`` or, failing that, of the nearest field that holds it
    (``lines[2].modifiers[0]`` → ``lines[2].modifiers`` → ``lines[2]``); None when nothing holds it."""
    while field:
        if field in positions:
            return positions[field]
        cut = max(field.rfind("."), field.rfind("["))
        if cut <= 0:
            return None
        field = field[:cut]
    return None


def reasons_of(decision: dict[str, Any], outcomes: tuple[str, ...]) -> list[dict[str, Any]]:
    """The reasons of a decision record whose outcome is one of ``outcomes``."""
    return [reason for reason in decision.get("reasons", ()) if reason.get("outcome") in outcomes]
