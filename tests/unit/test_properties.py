"""Property-based: the engine never raises, and anything not accepted carries a reason."""

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from processor.contracts import Undecodable, decode
from processor.engine import decide
from processor.samples import claim, order

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=30,
)
FIELDS = ["claim_id", "submitter_id", "submitted_at", "patient", "billing_provider", "diagnoses", "lines",
          "claim_type", "admission_date", "discharge_date", "discharge_status", "procedures", "admitting_diagnosis",
          "order_id", "lab_id", "ordering_provider", "collection_date", "tests"]  # fmt: skip


def assert_sound(decision):
    assert decision.outcome in {"accepted", "returned", "needs_review"}
    # accepted: nothing wrong, or only lines denied (the claim goes on)
    assert (decision.outcome == "accepted") == all(r.outcome == "denied" for r in decision.reasons)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(event=st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), json_values, max_size=10),
       kind=st.sampled_from(["claim", "order"]))  # fmt: skip
def test_arbitrary_json_objects(small_table, event, kind):
    assert_sound(decide(event, kind, small_table))


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32), bad=st.booleans(), path=st.sampled_from(
    [("diagnoses", 0, "code"), ("lines", 0, "code"), ("lines", 0, "service_date"), ("patient", "birth_date"),
     ("billing_provider", "npi"), ("lines", 0, "units"), ("diagnoses", 0, "system"), ("claim_type",),
     ("discharge_date",), ("admission_date",), ("procedures", 0, "code"), ("procedures", 0, "date")]),
       value=json_values)  # fmt: skip
def test_arbitrary_values_in_real_claims(small_table, seed, bad, path, value):
    import random

    event = claim(random.Random(seed), 1, bad)  # professional, outpatient or inpatient
    target = event
    for step in path[:-1]:
        assume(step in target if isinstance(step, str) else step < len(target))  # a stay has no lines
        target = target[step]
    target[path[-1]] = value
    assert_sound(decide(event, "claim", small_table))


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32), bad=st.booleans())
def test_generated_orders(small_table, seed, bad):
    import random

    assert_sound(decide(order(random.Random(seed), 1, bad), "order", small_table))


@given(raw=st.binary(max_size=200))
def test_decode_either_returns_an_object_or_says_why(raw):
    try:
        assert isinstance(decode(raw), dict)
    except Undecodable as err:
        assert str(err)
