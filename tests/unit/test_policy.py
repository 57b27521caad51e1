"""A payer's rules file: each rule's outcome per kind of event, or the rule switched off."""

from __future__ import annotations

import pytest

from processor.engine import DEFAULT_POLICY, decide, load_policy, policy_from
from tests.conftest import a_claim, an_order

HEADER = [{"code": "E11", "system": "ICD-10-CM"}]
HYPERTENSION = [{"code": "I10", "system": "ICD-10-CM"}]


def write(tmp_path, text: str):
    path = tmp_path / "rules.toml"
    path.write_text(text)
    return path


def test_a_rules_file_changes_outcomes_per_kind_and_switches_rules_off(tmp_path, small_table):
    policy = load_policy(write(tmp_path, """
        [rules]
        "diagnosis.header" = "needs_review"
        [claim]
        "npi.invalid" = "off"
        [order]
        "coverage.not_supported" = "returned"
        "diagnosis.header" = "off"
    """))  # fmt: skip
    bad_npi = {"npi": "1234567890"}
    held = decide(a_claim(diagnoses=HEADER, billing_provider=bad_npi), "claim", small_table, policy)
    assert held.outcome == "needs_review" and [r.id for r in held.reasons] == ["diagnosis.header"]
    assert held.reasons[0].review and "E11" in held.reasons[0].review
    assert decide(an_order(diagnoses=HEADER), "order", small_table, policy).outcome == "accepted"
    refused = decide(an_order(diagnoses=HYPERTENSION), "order", small_table, policy)
    assert refused.outcome == "returned" and refused.reasons[0].review is None


def test_without_a_policy_the_defaults_apply(small_table):
    claim = a_claim(diagnoses=HEADER)
    assert decide(claim, "claim", small_table) == decide(claim, "claim", small_table, DEFAULT_POLICY)
    assert DEFAULT_POLICY.outcome("diagnosis.header", "order") == "needs_review"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('[claim]\n"diagnosis.headr" = "off"', "unknown rule 'diagnosis.headr'"),
        ('[claim]\n"diagnosis.header" = "rejected"', "use 'returned', 'needs_review', 'denied'"),
        ('[payer]\n"diagnosis.header" = "off"', "unknown section"),
        ("[claim\n", "not valid TOML"),
    ],
)
def test_a_bad_rules_file_names_the_problem(tmp_path, text, problem):
    with pytest.raises(ValueError, match=problem):
        load_policy(write(tmp_path, text))


def test_policy_from_a_mapping():
    policy = policy_from({"rules": {"ncci.bundled": "needs_review"}}, name="payer-7")
    assert policy.name == "payer-7"
    assert policy.outcome("ncci.bundled", "claim") == policy.outcome("ncci.bundled", "order") == "needs_review"
