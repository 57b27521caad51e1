"""Every rule is declared once and raised where it is named.

Read statically from the engine's source: every rule id in ``RULES`` is named as a literal where it is
raised (a ``fail(...)`` or ``_Failure(...)`` call, or the per-role table of ``engine/decide.py``), every id
raised is declared, and every raising site passes the keywords its rule's message and review templates
name. Then driven through the engine: the events of the engine's case tables reach every rule, and every
template formats with the keywords the engine passes.
"""

from __future__ import annotations

import ast
import dataclasses
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest

import processor.engine
from processor.code_table.table import CodeTable
from processor.engine import RULES, decide
from processor.engine.decide import _Review
from processor.engine.duplicates import LineMatch, Verdict
from tests.conftest import SMALL_POLICY, SMALL_TABLE, a_claim, an_order
from tests.unit.test_engine import CLAIM_CASES, NOT_LOADED_CASES, ORDER_CASES

ENGINE = Path(processor.engine.__file__).parent
ALWAYS_PASSED = frozenset({"field", "value"})  # every fail() passes the field and its value


class Site(NamedTuple):
    """A place in the engine that raises a rule: the rule ids it can raise and the keywords it passes, or why
    the test cannot read them."""

    where: str
    rule_ids: frozenset[str]
    keywords: frozenset[str]
    problem: str | None = None


class Unreadable(Exception):
    """A rule id or a keyword the test cannot read from the source: it is not written as a literal."""


def placeholders(template: str) -> set[str]:
    """The names a message template formats: ``{value!r}`` and ``{max_units:g}`` name value and max_units."""
    names = set()
    for _text, name, _spec, _conversion in string.Formatter().parse(template):
        if name is not None:
            names.add(name.split(".")[0].split("[")[0])
    return names


def _literal(node: ast.expr) -> str:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    raise Unreadable(f"{ast.unparse(node)!r} is not a literal")


def _role_tables(tree: ast.Module) -> dict[str, set[str]]:
    """The ids of the per-role tables (``_RoleRules(system_unknown="diagnosis.system_unknown", ...)``) by field."""
    by_field: dict[str, set[str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "_RoleRules":
            for keyword in node.keywords:
                if keyword.arg is not None and keyword.arg != "systems":
                    by_field.setdefault(keyword.arg, set()).add(_literal(keyword.value))
    return by_field


def _details_keys(tree: ast.Module) -> dict[str, frozenset[str]]:
    """The keys of the dict literal a ``details()`` method returns (``LineMatch.details``), by method name."""
    keys = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == "details":
            for statement in ast.walk(node):
                if isinstance(statement, ast.Return) and isinstance(statement.value, ast.Dict):
                    keys[node.name] = frozenset(_literal(key) for key in statement.value.keys if key is not None)
    return keys


def _rule_ids(node: ast.expr, function: ast.FunctionDef, roles: dict[str, set[str]]) -> frozenset[str]:
    """The literal rule ids a rule-id expression can take."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return frozenset({node.value})
    if isinstance(node, ast.IfExp):
        return _rule_ids(node.body, function, roles) | _rule_ids(node.orelse, function, roles)
    if isinstance(node, ast.Name):  # a local assigned literals, as ``rule_id = "ncci.bundled"``
        values = [
            assign.value
            for assign in ast.walk(function)
            if isinstance(assign, ast.Assign)
            and any(isinstance(target, ast.Name) and target.id == node.id for target in assign.targets)
        ]
        if values:
            return frozenset().union(*(_rule_ids(value, function, roles) for value in values))
    if isinstance(node, ast.Attribute) and node.attr in roles:  # ``rules.malformed``: the per-role table
        return frozenset(roles[node.attr])
    raise Unreadable(f"the rule id {ast.unparse(node)!r} is not a literal nor a field of the per-role table")


def _site(
    call: ast.Call, function: ast.FunctionDef, roles: dict[str, set[str]], details: dict[str, frozenset[str]]
) -> Site | None:
    """The site of a ``fail(rule_id, field, value, **keywords)`` or ``_Failure(rule_id, part, value, {...})``
    call; None for any other call, and for a ``fail`` that passes on a ``_Failure`` (checked where it is made)."""
    if isinstance(call.func, ast.Attribute) and call.func.attr == "fail" and call.args:
        first = call.args[0]
        if isinstance(first, ast.Attribute) and first.attr == "rule_id":
            return None
        keywords = set(ALWAYS_PASSED)
        for keyword in call.keywords:
            if keyword.arg is not None:
                keywords.add(keyword.arg)
            elif (  # **duplicate.details()
                isinstance(keyword.value, ast.Call)
                and isinstance(keyword.value.func, ast.Attribute)
                and keyword.value.func.attr in details
            ):
                keywords |= details[keyword.value.func.attr]
            else:
                raise Unreadable(f"cannot read the keywords **{ast.unparse(keyword.value)}: pass them by name")
        return Site("", _rule_ids(first, function, roles), frozenset(keywords))
    if isinstance(call.func, ast.Name) and call.func.id == "_Failure":
        passed = call.args[3] if len(call.args) > 3 else None
        if not isinstance(passed, ast.Dict):
            raise Unreadable("the details of a _Failure are not a literal dict")
        keywords = ALWAYS_PASSED | {_literal(key) for key in passed.keys if key is not None}
        return Site("", _rule_ids(call.args[0], function, roles), frozenset(keywords))
    return None


def _sites() -> list[Site]:
    """Every site in the engine's modules that raises a rule, in source order."""
    modules = {path: ast.parse(path.read_text(encoding="utf-8")) for path in sorted(ENGINE.glob("*.py"))}
    roles: dict[str, set[str]] = {}
    details: dict[str, frozenset[str]] = {}
    for path, tree in modules.items():
        try:
            for name, ids in _role_tables(tree).items():
                roles.setdefault(name, set()).update(ids)
            details.update(_details_keys(tree))
        except Unreadable as unreadable:
            return [Site(path.name, frozenset(), frozenset(), str(unreadable))]
    sites: dict[tuple[str, int], Site] = {}
    for path, tree in modules.items():
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef):
                continue
            for call in ast.walk(function):
                if not isinstance(call, ast.Call):
                    continue
                where = f"{path.name}:{call.lineno}"
                try:
                    site = _site(call, function, roles, details)
                except Unreadable as unreadable:
                    site = Site(where, frozenset(), frozenset(), str(unreadable))
                if site is not None:
                    sites[path.name, call.lineno] = site._replace(where=where)
    return [sites[at] for at in sorted(sites)]


SITES = _sites()


def test_every_site_names_its_rule_ids_and_keywords_as_literals():
    """An id built at run time (``f"{role}.age_conflict"``) is found by no search, and its templates go unchecked."""
    assert [f"{site.where}: {site.problem}" for site in SITES if site.problem] == []


def test_every_rule_is_raised_where_it_is_named_and_every_raised_rule_is_declared():
    raised = frozenset().union(*(site.rule_ids for site in SITES))
    assert set(RULES) - raised == set(), "declared in rules.py but raised nowhere"
    assert raised - set(RULES) == set(), "raised but not declared in rules.py"


def test_a_rule_id_is_named_in_full_where_it_is_raised():
    """``grep -rn '"procedure.age_conflict"' processor`` finds its row and the place that raises it."""
    source = "".join(path.read_text(encoding="utf-8") for path in ENGINE.glob("*.py") if path.name != "rules.py")
    for rule_id in RULES:
        assert f'"{rule_id}"' in source, rule_id


@pytest.mark.parametrize("site", SITES, ids=[site.where for site in SITES])
def test_every_raising_site_passes_what_its_templates_name(site):
    assert site.problem is None, f"{site.where}: {site.problem}"
    for rule_id in sorted(site.rule_ids):
        rule = RULES[rule_id]
        missing = (placeholders(rule.message) | placeholders(rule.review)) - site.keywords
        assert missing == set(), f"{site.where} raises {rule_id} without passing {sorted(missing)}"


def test_placeholders_are_read_as_names():
    assert placeholders("{field} is {value!r}, over {max_units:g} on {day}") == {"field", "value", "max_units", "day"}


def _every_case() -> Iterator[tuple[str, dict[str, Any], CodeTable, Any]]:
    """(kind, event, table, duplicate) for every case of the engine's and the duplicates' case tables."""
    small = CodeTable("test").load([*SMALL_TABLE, *SMALL_POLICY])
    for _why, changes, _outcome, _expected in CLAIM_CASES:
        yield "claim", a_claim(**changes), small, None
    for _why, changes, _outcome, _expected in ORDER_CASES:
        yield "order", an_order(**changes), small, None
    for system, kind, event, _rule_id in NOT_LOADED_CASES:
        yield kind, event, CodeTable("partial").load((k, r) for k, r in SMALL_TABLE if r["system"] != system), None
    without_npi = an_order()
    del without_npi["ordering_provider"]
    yield "order", without_npi, small, None
    # The engine's duplicate input, as the window makes it (tests/unit/test_duplicates.py): a claim sent again,
    # a line repeated exactly, a potential duplicate, a replacement of a claim the window does not hold.
    exact = LineMatch(0, 1, True, "CLM-1", "1-5", 1, 1_762_164_000_000)
    suspect = dataclasses.replace(exact, exact=False)
    for verdict in (Verdict((exact,), resent=True), Verdict((exact,)), Verdict((suspect,)),
                    Verdict(replaces_unknown=True)):  # fmt: skip
        yield "claim", a_claim(claim_id="CLM-2", frequency="replacement", replaces="1-9"), small, verdict


def test_every_rule_is_reached_and_its_templates_format_with_what_the_engine_passes(monkeypatch):
    raised: list[tuple[str, str, Any, dict[str, Any]]] = []
    fail = _Review.fail

    def recording_fail(review: _Review, rule_id: str, field: str, value: Any, **details: Any) -> None:
        raised.append((rule_id, field, value, details))
        fail(review, rule_id, field, value, **details)

    monkeypatch.setattr(_Review, "fail", recording_fail)
    for kind, event, table, duplicate in _every_case():
        decide(event, kind, table, None, duplicate)

    assert set(RULES) - {rule_id for rule_id, *_ in raised} == set(), "no case drives the engine to these rules"
    for rule_id, field, value, details in raised:
        rule = RULES[rule_id]
        for template in (rule.message, rule.review):  # a payer may send any rule to review
            try:
                template.format(field=field, value=value, **details)
            except (KeyError, IndexError) as missing:
                pytest.fail(f"{rule_id} raised without {missing} for {template!r}")
