"""A real Prometheus scrapes a real worker fed through the real broker; then every PromQL expression of the
Grafana dashboard and of the alert rules is asked of that server: no panel or alert queries a metric that
does not exist.

- Every dashboard query returns data (its Grafana variables substituted).
- Every series selector inside every dashboard and alert expression returns data. Alert expressions as a
  whole are conditions (``... > 1000``) and are empty while all is well, so for them it is their selectors
  that must match, and the server must evaluate each rule without error (rule health "ok").
"""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import SMALL_POLICY, SMALL_TABLE, a_claim, an_order
from tests.deploy.prometheus_server import Prometheus, prometheus_server
from tests.deploy.promql import (
    ALERTS,
    alert_rules,
    dashboard_queries,
    dashboard_variable_queries,
    selectors,
    substitute,
)
from tests.integration.conftest import counted, eventually, load_table, produce, read_all, running_worker
from tests.integration.conftest import settings as settings  # the fixture: fresh topic names per test

pytestmark = pytest.mark.kafka

BAD_DIAGNOSIS = [{"code": "E11", "system": "ICD-10-CM"}]  # a header code: returned


def every_query() -> list[tuple[str, str]]:
    """``(where, PromQL)`` that must each return data: dashboard queries and their selectors, alert
    expressions' selectors, and the dashboard variables' metrics."""
    queries = []
    for title, expr in dashboard_queries():
        expr = substitute(expr)
        queries.append((f"panel {title!r}", expr))
        queries += [(f"panel {title!r}, selector", s) for s in selectors(expr)]
    for rule in alert_rules():
        queries += [(f"alert {rule['alert']}, selector", s) for s in selectors(rule["expr"])]
    for variable, metric, label in dashboard_variable_queries():
        queries.append((f"variable ${variable}", f"count by ({label}) ({metric})"))
    return queries


def empty(prometheus: Prometheus, queries: list[tuple[str, str]]) -> list[str]:
    return [f"{where}: {expr}" for where, expr in queries if not prometheus.query(expr)]


async def test_every_dashboard_and_alert_query_returns_data_from_a_real_prometheus(settings, tmp_path):
    t = settings.topics
    releases = [record for record in SMALL_POLICY if record[0].startswith("@release|ICD-10-CM")]  # what it covers
    await load_table(settings, [*SMALL_TABLE, *releases])
    async with running_worker(settings) as worker:
        claims = [a_claim(claim_id=f"C{i}") for i in range(4)] + [
            a_claim(claim_id=f"R{i}", diagnoses=BAD_DIAGNOSIS) for i in range(2)
        ]
        orders = [an_order(order_id="O1"), an_order(order_id="O2", ordering_provider={"npi": "1234567890"})]
        await produce(settings, t.claims, [*claims, b"not json"])
        await produce(settings, t.orders, [*orders, b"\xff\xfe"])
        await read_all(settings, [t.accepted, t.returned, t.needs_review, t.dead_letter], len(claims) + len(orders) + 2)
        await counted(worker, claim=len(claims) + 1, order=len(orders) + 1)  # so every scrape has the final counts

        with prometheus_server(tmp_path, [f"127.0.0.1:{worker.metrics_port}"], [ALERTS]) as prometheus:
            queries = every_query()
            assert len(queries) > 40
            missing: list[str] = []

            async def all_have_data() -> bool:
                missing[:] = await asyncio.to_thread(empty, prometheus, queries)
                return not missing

            try:
                await eventually(all_have_data, timeout=60, what="every query to return data")
            except AssertionError as err:
                raise AssertionError("queries without data:\n  " + "\n  ".join(missing)) from err

            # The server loads the alert rules as they are and evaluates each one without error.
            async def rules_evaluated() -> list[dict]:
                groups = (await asyncio.to_thread(prometheus.get, "/api/v1/rules"))["groups"]
                rules = [rule for group in groups for rule in group["rules"]]
                errors = [f"{r['name']}: {r.get('lastError')}" for r in rules if r["health"] == "err"]
                assert not errors, errors
                return rules if rules and all(r["health"] == "ok" for r in rules) else []

            rules = await eventually(rules_evaluated, timeout=30, what="the alert rules to be evaluated")
            assert {r["name"] for r in rules} == {r["alert"] for r in alert_rules()}

            # What was fed is what the server holds: the returned claims and both dead letters.
            returned = prometheus.query('sum(processor_decisions_total{kind="claim",outcome="returned"})')
            assert float(returned[0]["value"][1]) == 2
            dead = prometheus.query("sum by (topic) (processor_dead_letters_total)")
            assert {r["metric"]["topic"]: float(r["value"][1]) for r in dead} == {t.claims: 1, t.orders: 1}
