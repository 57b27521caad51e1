"""What the deploy files ask of Prometheus: every PromQL expression of the Grafana dashboard and of the alert
rules, Grafana's variables substituted, and the series selectors inside each expression (found by a small
scanner: PromQL's grammar is regular enough at the level of selectors, functions and clauses)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from prometheus_client import CollectorRegistry

from processor.app.metrics import Metrics

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "processor.json"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"

# Grafana's variables, as a query over a short test run needs them: windows that hold a few 1 s scrapes,
# every worker.
GRAFANA_VARIABLES = {"__rate_interval": "1m", "__interval": "15s", "__range": "1h", "instance": ".*"}
# Metrics that Prometheus makes itself for every target.
PROMETHEUS_METRICS = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}

_KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "offset",
             "bool", "inf", "nan", "atan2"}  # fmt: skip
_CLAUSE = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_BRACED = re.compile(r"([a-zA-Z_:][\w:]*)?\s*(\{[^}]*\})")
_NAME = re.compile(r"(?<![\w:.$])([a-zA-Z_:][\w:]*)(?![\w:])")


def substitute(expr: str) -> str:
    """``expr`` with Grafana's ``$name`` and ``${name}`` variables replaced; fails on an unknown one."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in GRAFANA_VARIABLES:
            raise AssertionError(f"no test value for the Grafana variable ${name} in {expr!r}")
        return GRAFANA_VARIABLES[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", value, expr)


def selectors(expr: str) -> list[str]:
    """The series selectors in ``expr`` (``name{matchers}`` or ``name``), without range or offset."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', lambda m: m.group(0).replace("(", "\0").replace(")", "\1"), expr)
    text = re.sub(r"\[[^\]]*\]", " ", text)  # range and subquery windows
    text = re.sub(r"\boffset\s+-?\w+", " ", text)
    text = _CLAUSE.sub(" ", text)
    found: list[str] = []

    def braced(match: re.Match[str]) -> str:
        found.append((match.group(1) or "") + match.group(2).replace("\0", "(").replace("\1", ")"))
        return " "

    text = _BRACED.sub(braced, text)
    for match in _NAME.finditer(text):
        name, rest = match.group(1), text[match.end() :].lstrip()
        if name.lower() in _KEYWORDS or rest.startswith("("):
            continue  # a keyword or a function
        found.append(name)
    return found


def metric_name(selector: str) -> str:
    return re.match(r"[a-zA-Z_:][\w:]*", selector).group(0)  # type: ignore[union-attr]


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def dashboard_panels() -> list[dict]:
    """Every panel, rows' nested panels included."""
    panels = []
    for panel in dashboard()["panels"]:
        panels.append(panel)
        panels.extend(panel.get("panels", []))
    return panels


def dashboard_queries() -> list[tuple[str, str]]:
    """``(panel title, expression)`` for every query target of every panel."""
    return [(p["title"], t["expr"]) for p in dashboard_panels() for t in p.get("targets", [])]


def dashboard_variable_queries() -> list[tuple[str, str, str]]:
    """``(variable, metric, label)`` for each ``label_values(metric, label)`` variable of the dashboard."""
    found = []
    for variable in dashboard()["templating"]["list"]:
        if variable["type"] != "query":
            continue
        query = variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
        match = re.fullmatch(r"label_values\(\s*([^,]+?)\s*,\s*(\w+)\s*\)", query)
        assert match, f"variable ${variable['name']}: only label_values(metric, label) is checked, got {query!r}"
        found.append((variable["name"], match.group(1), match.group(2)))
    return found


def alert_rules() -> list[dict]:
    return [rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]]


def exported_metric_names() -> set[str]:
    """The sample names the processor exports (processor/app/metrics.py), series not yet created included."""
    names = set()
    for family in Metrics(CollectorRegistry()).registry.collect():
        if family.type == "counter":
            names |= {family.name + "_total", family.name + "_created"}
        elif family.type == "histogram":
            names |= {family.name + suffix for suffix in ("_bucket", "_count", "_sum", "_created")}
        else:
            names.add(family.name)
    return names
