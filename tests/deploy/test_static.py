"""The deploy files, checked without Docker or a cluster (neither is available in CI): they parse, and they
refer only to images, ports, paths, commands, environment variables and metrics that exist in the project."""

from __future__ import annotations

import dataclasses
import re
import shlex
import tomllib

import pytest
import yaml

from processor.cli import _parser
from processor.config import Settings, Topics
from tests.deploy.promql import (
    DEPLOY,
    PROMETHEUS_METRICS,
    ROOT,
    alert_rules,
    dashboard,
    dashboard_panels,
    dashboard_queries,
    dashboard_variable_queries,
    exported_metric_names,
    metric_name,
    selectors,
    substitute,
)

DEFAULTS = Settings()
COMPOSE = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
K8S = {
    doc["kind"]: doc
    for path in sorted((DEPLOY / "k8s").glob("*.yaml"))
    for doc in yaml.safe_load_all(path.read_text())
    if doc
}
IMAGE = "medical-coding-processor"  # the project's image (deploy/Dockerfile)


def env_vars_read_by_config() -> set[str]:
    """Every environment variable that Settings.from_env (processor/config.py) reads."""
    names = {"KAFKA_BOOTSTRAP_SERVERS", "PROCESSOR_TOPIC_PREFIX"}
    names |= {f"PROCESSOR_{f.name.upper()}" for f in dataclasses.fields(Settings) if f.name != "topics"}
    names |= {f"PROCESSOR_TOPIC_{f.name.upper()}" for f in dataclasses.fields(Topics)}
    return names


def assert_env_is_read(env: dict[str, object]) -> Settings:
    unknown = set(env) - env_vars_read_by_config()
    assert not unknown, f"environment variables that processor/config.py does not read: {sorted(unknown)}"
    return Settings.from_env(env={k: str(v) for k, v in env.items()})  # and their values parse


def assert_processor_command(command: list[str] | str) -> None:
    """Every ``processor ...`` in a command (list or ``sh -c`` string) is a command the CLI accepts."""
    if isinstance(command, list) and command[:2] == ["sh", "-c"]:
        command = command[2]
    parts = [shlex.split(p) for p in command.split("&&")] if isinstance(command, str) else [command]
    for argv in parts:
        assert argv[0] == "processor", argv
        _parser().parse_args(argv[1:])  # exits (fails the test) on an unknown command or flag


# --- Dockerfile ---------------------------------------------------------------------------------------------


def dockerfile() -> list[str]:
    text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_the_dockerfile_is_multi_stage_non_root_with_a_health_check_on_healthz():
    lines = dockerfile()
    assert len([line for line in lines if line.startswith("FROM ")]) >= 2
    user = [line.split()[1] for line in lines if line.startswith("USER ")][-1]
    assert user.split(":")[0] not in ("0", "root")
    assert [line.split()[1:] for line in lines if line.startswith("EXPOSE ")] == [[str(DEFAULTS.metrics_port)]]
    (healthcheck,) = [line for line in lines if line.startswith("HEALTHCHECK ")]
    assert "/healthz" in healthcheck and "PROCESSOR_METRICS_PORT" in healthcheck
    assert lines[-1] == 'CMD ["processor", "run"]'


def test_the_dockerfile_copies_only_what_exists_and_what_the_wheel_needs():
    copies = [line.split()[1:] for line in dockerfile() if line.startswith("COPY ") and "--from=" not in line]
    sources = {src.rstrip("/") for args in copies for src in args[:-1]}
    for source in sources:
        assert (ROOT / source).exists(), f"COPY {source}: no such file in the repository"
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    wheel = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]
    needed = {*wheel["packages"], *wheel["force-include"], pyproject["project"]["readme"], "pyproject.toml"}
    assert needed <= sources, f"the wheel build needs {sorted(needed - sources)}"
    # .dockerignore keeps every COPY source in the build context.
    kept = {line[1:].rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines() if line.startswith("!")}
    assert sources <= kept


# --- Compose stack ------------------------------------------------------------------------------------------


def test_compose_uses_pinned_images_and_builds_the_processor_from_deploy_dockerfile():
    services = COMPOSE["services"]
    assert services["kafka"]["image"] == "apache/kafka:4.1.1"
    for name, service in services.items():
        image = service["image"]
        assert ":" in image and not image.endswith(":latest"), f"{name}: pin the image version ({image})"
        if "build" in service:
            assert image.split(":")[0] == IMAGE
            context = (DEPLOY / service["build"]["context"]).resolve()
            assert context == ROOT and (context / service["build"]["dockerfile"]).is_file()
    assert {"kafka", "setup", "worker", "prometheus", "grafana"} <= set(services)


def test_compose_workers_and_setup_run_real_commands_with_settings_the_processor_reads():
    services = COMPOSE["services"]
    for name in ("setup", "worker"):
        assert_processor_command(services[name]["command"])
        settings = assert_env_is_read(services[name]["environment"])
        assert settings.bootstrap_servers == "kafka:9092"
    assert services["worker"]["command"][:2] == ["processor", "run"]
    worker = assert_env_is_read(services["worker"]["environment"])
    assert services["worker"]["expose"] == [str(worker.metrics_port)]
    assert 1 < services["worker"]["deploy"]["replicas"] <= DEFAULTS.partitions
    assert services["worker"]["depends_on"]["setup"]["condition"] == "service_completed_successfully"
    # The broker's in-network listener is the one the processor is told about.
    assert "PLAINTEXT://kafka:9092" in services["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]


def test_compose_mounts_files_that_exist_where_prometheus_and_grafana_read_them():
    services = COMPOSE["services"]
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            assert (DEPLOY / source).exists(), f"{name}: volume source {source} does not exist"
    prometheus = {v.split(":")[1]: v.split(":")[0] for v in services["prometheus"]["volumes"]}
    assert "--config.file=/etc/prometheus/prometheus.yml" in services["prometheus"]["command"]
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    for rule_file in config["rule_files"]:  # relative to the config file, in the container as here
        assert f"/etc/prometheus/{rule_file}" in prometheus
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "processor"  # the job the alert rules select
    assert job["dns_sd_configs"][0]["names"] == ["worker"]
    assert job["dns_sd_configs"][0]["port"] == DEFAULTS.metrics_port
    grafana = {v.split(":")[1]: v.split(":")[0] for v in services["grafana"]["volumes"]}
    providers = yaml.safe_load((DEPLOY / "grafana/provisioning/dashboards/processor.yml").read_text())
    dashboards_dir = providers["providers"][0]["options"]["path"]
    assert (DEPLOY / grafana[dashboards_dir] / "processor.json").is_file()
    home = services["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == f"{dashboards_dir}/processor.json"


# --- Kubernetes ---------------------------------------------------------------------------------------------


def test_kustomization_lists_every_manifest():
    listed = set(K8S["Kustomization"]["resources"])
    files = {p.name for p in (DEPLOY / "k8s").glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == files
    assert K8S["Kustomization"]["images"][0]["name"] == IMAGE


def test_the_configmap_holds_only_settings_the_processor_reads():
    settings = assert_env_is_read(K8S["ConfigMap"]["data"])
    assert settings.metrics_port == DEFAULTS.metrics_port
    assert settings.topics == Topics()


def test_the_deployment_probes_health_and_readiness_on_the_metrics_port_as_non_root():
    deployment = K8S["Deployment"]
    pod = deployment["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    assert container["image"].split(":")[0] == IMAGE
    assert_processor_command(container["command"])
    assert container["command"][:2] == ["processor", "run"]
    assert container["envFrom"][0]["configMapRef"]["name"] == K8S["ConfigMap"]["metadata"]["name"]
    (port,) = container["ports"]
    assert port["containerPort"] == DEFAULTS.metrics_port
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": port["name"]}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": port["name"]}
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(DEFAULTS.metrics_port)
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert "memory" in container["resources"]["limits"]
    security = pod["spec"]["securityContext"]
    dockerfile_uid = [line.split()[1] for line in dockerfile() if line.startswith("USER ")][-1].split(":")[0]
    assert security["runAsNonRoot"] is True and str(security["runAsUser"]) == dockerfile_uid
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["spec"]["terminationGracePeriodSeconds"] >= 30
    assert pod["metadata"]["labels"] | deployment["spec"]["selector"]["matchLabels"] == pod["metadata"]["labels"]


def test_the_service_and_the_disruption_budget_select_the_workers():
    pod_labels = K8S["Deployment"]["spec"]["template"]["metadata"]["labels"]
    service = K8S["Service"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    (port,) = service["spec"]["ports"]
    assert port["port"] == DEFAULTS.metrics_port and port["targetPort"] == "metrics"
    assert K8S["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()


def test_keda_scales_on_the_workers_group_lag_and_never_above_the_input_partitions():
    scaled = K8S["ScaledObject"]
    config = K8S["ConfigMap"]["data"]
    assert scaled["spec"]["scaleTargetRef"]["name"] == K8S["Deployment"]["metadata"]["name"]
    # The rule: a worker beyond an input topic's partitions would sit idle.
    assert 1 <= scaled["spec"]["minReplicaCount"] <= scaled["spec"]["maxReplicaCount"] <= DEFAULTS.partitions
    assert K8S["Deployment"]["spec"]["replicas"] <= scaled["spec"]["maxReplicaCount"]
    triggers = scaled["spec"]["triggers"]
    assert {t["type"] for t in triggers} == {"kafka"}
    inputs = {config["PROCESSOR_TOPIC_CLAIMS"], config["PROCESSOR_TOPIC_ORDERS"]}
    assert {t["metadata"]["topic"] for t in triggers} == inputs
    for trigger in triggers:
        assert trigger["metadata"]["consumerGroup"] == config["PROCESSOR_GROUP_ID"]
        assert trigger["metadata"]["bootstrapServers"] == config["KAFKA_BOOTSTRAP_SERVERS"]
    job = K8S["Job"]["spec"]["template"]["spec"]["containers"][0]
    assert_processor_command(job["command"])
    partitions = assert_env_is_read({**config, **{e["name"]: e["value"] for e in job["env"]}}).partitions
    assert scaled["spec"]["maxReplicaCount"] <= partitions


# --- Dashboard and alerts -----------------------------------------------------------------------------------


@pytest.mark.parametrize("where, expr", [*dashboard_queries(), *[(r["alert"], r["expr"]) for r in alert_rules()]])
def test_queries_name_only_metrics_the_processor_exports(where, expr):
    names = {metric_name(s) for s in selectors(substitute(expr))}
    assert names, f"{where}: no metric found in {expr!r}"
    unknown = names - exported_metric_names() - PROMETHEUS_METRICS
    assert not unknown, f"{where} queries metrics that processor/app/metrics.py does not export: {sorted(unknown)}"


def test_the_dashboard_covers_what_the_issue_asks_and_uses_the_provisioned_data_source():
    exprs = " ".join(expr for _, expr in dashboard_queries())
    for needed in ("processor_decisions_total", "processor_reasons_total", "histogram_quantile",
                   "processor_consumer_lag", "processor_dead_letters_total", "processor_code_table_offset",
                   "time() - max(processor_code_table_last_update_timestamp_seconds", "processor_ready"):  # fmt: skip
        assert needed in exprs
    assert [v for v in dashboard_variable_queries() if v[1] not in exported_metric_names()] == []
    datasource = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/prometheus.yml").read_text())
    assert datasource["datasources"][0]["url"] == "http://prometheus:9090"
    for panel in dashboard_panels():
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
    ids = [p["id"] for p in dashboard_panels()]
    assert len(ids) == len(set(ids))
    assert dashboard()["uid"]


def runbook_anchors() -> set[str]:
    """GitHub's anchors of the runbook's headings."""
    headings = re.findall(r"^#+\s+(.+)$", (ROOT / "docs" / "runbook.md").read_text(), re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h).strip().lower().replace(" ", "-") for h in headings}


def test_every_alert_links_to_its_own_runbook_section_that_says_what_to_do():
    runbook = (ROOT / "docs" / "runbook.md").read_text()
    for rule in alert_rules():
        url = rule["annotations"]["runbook_url"]
        path, anchor = url.split("#")
        assert (ROOT / path).resolve() == ROOT / "docs" / "runbook.md"
        assert anchor == rule["alert"].lower() and anchor in runbook_anchors(), url
        section = runbook.split(f"## {rule['alert']}\n")[1].split("\n## ")[0]
        for part in ("**What it means.**", "**How to check.**", "**What to do.**"):
            assert part in section, f"{rule['alert']}: the runbook section lacks {part}"
        assert rule["labels"]["severity"] in ("info", "warning", "critical")


def test_the_deploy_page_documents_the_deploy_files_and_says_docker_is_not_in_ci():
    deploy = (ROOT / "docs" / "deploy.md").read_text()
    assert "Docker is not available in CI" in deploy
    for path in re.findall(r"`((?:deploy|docs)/[\w./-]+)`", deploy):
        assert (ROOT / path).exists(), f"docs/deploy.md names {path}, which does not exist"


def test_the_selector_scanner_finds_selectors_not_functions_labels_or_keywords():
    expr = (
        'sum by (kind) (rate(a_total{outcome="returned", x=~"(y|z)"}[5m] offset 1h)) / on (kind) group_left b '
        'and ignoring (le) histogram_quantile(0.9, c_bucket) unless absent(up{job="p"} == 1)'
    )
    assert selectors(expr) == ['a_total{outcome="returned", x=~"(y|z)"}', 'up{job="p"}', "b", "c_bucket"]


def test_the_processor_default_port_is_the_one_everything_uses():
    # Ports are compared with Settings' default everywhere above; this keeps the settings page in step too.
    assert f"`PROCESSOR_METRICS_PORT` (`{DEFAULTS.metrics_port}`)" in (ROOT / "docs" / "settings.md").read_text()
