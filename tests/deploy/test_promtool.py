"""Prometheus' own checks of the deploy files: the compose stack's configuration and the alert rules are
valid, and the alert rules fire and stay quiet as their unit tests (alerts.test.yml) say."""

from __future__ import annotations

import subprocess

from tests.deploy.prometheus_server import binary
from tests.deploy.promql import ALERTS, DEPLOY


def promtool(*args: str) -> str:
    result = subprocess.run([binary("promtool"), *args], capture_output=True, text=True, timeout=120,
                            cwd=DEPLOY / "prometheus")  # fmt: skip
    assert result.returncode == 0, f"promtool {' '.join(args)} failed:\n{result.stdout}{result.stderr}"
    return result.stdout + result.stderr


def test_the_compose_stack_prometheus_config_is_valid_and_loads_the_rules():
    output = promtool("check", "config", str(DEPLOY / "prometheus" / "prometheus.yml"))
    assert "1 rule files found" in output


def test_the_alert_rules_are_valid():
    assert "SUCCESS" in promtool("check", "rules", str(ALERTS))


def test_the_alert_rules_fire_and_stay_quiet_as_their_unit_tests_say():
    assert "SUCCESS" in promtool("test", "rules", str(DEPLOY / "prometheus" / "alerts.test.yml"))


def test_every_alert_has_unit_tests_where_it_fires_and_where_it_does_not():
    import yaml

    from tests.deploy.promql import alert_rules

    cases = [case for test in yaml.safe_load((DEPLOY / "prometheus" / "alerts.test.yml").read_text())["tests"]
             for case in test["alert_rule_test"]]  # fmt: skip
    for rule in alert_rules():
        own = [case for case in cases if case["alertname"] == rule["alert"]]
        assert any(case["exp_alerts"] for case in own), f"{rule['alert']}: no case where it fires"
        assert any(not case["exp_alerts"] for case in own), f"{rule['alert']}: no case where it stays quiet"
