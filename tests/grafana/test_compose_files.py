"""Both compose files, read as Docker Compose reads them: ports on 127.0.0.1 unless told
otherwise, Grafana through a read-only ClickHouse user, the collector with evaluation rules and
redaction, Grafana's files written by the stack's own generator (checked-in files when nothing
is set), and a `demo` profile sending traffic from inside the stack."""

from __future__ import annotations

import os
import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from assay.collector.cli import main
from assay.collector.evaluation.config import load_evaluation_config
from assay.collector.evaluation.rules import compile_rules
from assay.collector.grafana.budgets import DEFAULTS, ENV_PREFIX
from assay.collector.grafana.files import DASHBOARDS_PATH, ROOT_IN_GRAFANA
from assay.collector.settings import load_settings
from assay.collector.store.embedded import EmbeddedStore
from tests.grafana.alert_rules import ROOT

COMPOSE_FILES = ("docker-compose.yml", "docker-compose.cluster.yml")
_DEFAULT = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")


def interpolated(value: str, environment: dict[str, str] | None = None) -> str:
    """Compose's `${VAR:-default}` with `environment` (nothing set: the defaults)."""
    env = environment or {}
    return _DEFAULT.sub(lambda m: env.get(m.group(1)) or (m.group(2) or ""), value)


def compose(name: str) -> dict[str, Any]:
    return yaml.safe_load((ROOT / name).read_text(encoding="utf-8"))


def _volumes(service: dict[str, Any]) -> dict[str, str]:
    """Container path → what is mounted there."""
    out = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        out[target] = source
    return out


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_ports_are_published_on_loopback_unless_told_otherwise(name: str) -> None:
    published = [
        port for service in compose(name)["services"].values() for port in service.get("ports", [])
    ]
    assert published
    for port in published:
        assert interpolated(port).startswith("127.0.0.1:"), port
        assert interpolated(port, {"ASSAY_PUBLISH_HOST": "0.0.0.0"}).startswith("0.0.0.0:")


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_grafana_reads_through_a_read_only_clickhouse_user(name: str) -> None:
    services = compose(name)["services"]
    grafana = services["grafana"]["environment"]
    assert grafana["CLICKHOUSE_USER"] == "grafana"
    reader = "/etc/clickhouse-server/users.d/grafana-reader.xml"
    nodes = [s for s in services.values() if reader in _volumes(s)]
    assert nodes, "no ClickHouse server mounts the reader's file"
    for node in nodes:
        assert _volumes(node)[reader] == "./deploy/clickhouse/grafana-reader.xml"
        environment = {**node.get("environment", {})}
        anchor = compose(name).get("x-clickhouse", {}).get("environment", {})
        environment |= anchor
        assert "CLICKHOUSE_GRAFANA_PASSWORD" in environment
    assert "CLICKHOUSE_GRAFANA_PASSWORD" in grafana["CLICKHOUSE_PASSWORD"]


PASSWORDS = ("CLICKHOUSE_PASSWORD", "CLICKHOUSE_GRAFANA_PASSWORD", "GRAFANA_ADMIN_PASSWORD")


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_no_password_has_a_default(name: str) -> None:
    """Compose refuses to start a stack whose passwords are not set (`${VAR:?message}`), rather
    than give ClickHouse and Grafana passwords everyone knows."""
    text = (ROOT / name).read_text()
    uses = re.findall(r"\$\{(\w*PASSWORD\w*)([^}]*)\}", text)
    assert {variable for variable, _ in uses} == set(PASSWORDS)
    for variable, rest in uses:
        assert rest.startswith(":?"), f"${{{variable}{rest}}}"
    # No ClickHouse user without one: the collectors' URLs carry CLICKHOUSE_PASSWORD...
    urls = re.findall(r"://(\w+):(\$\{[^}]*\}|[^@\s/]*)@[\w.-]+:8123", text)
    assert urls and all(password.startswith("${CLICKHOUSE_PASSWORD:?") for _, password in urls)


def test_the_cluster_default_user_has_the_password() -> None:
    """...and the cluster's `default` user, which they write as, takes it, as do the replicas'
    connections to each other."""
    services = compose("docker-compose.cluster.yml")["services"]
    user_file = "/etc/clickhouse-server/users.d/default-user.xml"
    for node in ("ch1", "ch2"):
        assert _volumes(services[node])[user_file] == "./deploy/cluster/default-user.xml"
    root = ET.parse(ROOT / "deploy" / "cluster" / "default-user.xml").getroot()
    password = root.find("users/default/password")
    assert password is not None and password.get("from_env") == "CLICKHOUSE_PASSWORD"
    assert password.get("replace") == "replace"  # not merged with the empty built-in one
    cluster = ET.parse(ROOT / "deploy" / "cluster" / "clickhouse.xml").getroot()
    replicas = cluster.findall("remote_servers/assay/shard/replica")
    assert replicas
    for replica in replicas:
        assert replica.findtext("user") == "default"
        assert replica.find("password").get("from_env") == "CLICKHOUSE_PASSWORD"  # type: ignore[union-attr]


@pytest.mark.subprocess
def test_deploy_passwords_fills_the_env_file_once(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("ASSAY_ALERTS_TO=ops@example.com\nGRAFANA_ADMIN_PASSWORD=mine")

    def run() -> dict[str, str]:
        subprocess.run(
            [str(ROOT / "deploy" / "passwords")],
            env={**os.environ, "ENV_FILE": str(env_file)},
            check=True,
            capture_output=True,
        )
        lines = env_file.read_text().splitlines()
        return dict(line.split("=", 1) for line in lines)

    first = run()
    assert (
        first["ASSAY_ALERTS_TO"] == "ops@example.com" and first["GRAFANA_ADMIN_PASSWORD"] == "mine"
    )
    for variable in PASSWORDS[:2]:
        assert re.fullmatch("[0-9a-f]{32}", first[variable]), first
    assert first["CLICKHOUSE_PASSWORD"] != first["CLICKHOUSE_GRAFANA_PASSWORD"]
    assert run() == first  # a second run keeps them


def test_the_reader_can_only_read_the_assay_database(embedded_store: EmbeddedStore) -> None:
    root = ET.parse(ROOT / "deploy" / "clickhouse" / "grafana-reader.xml").getroot()
    user = root.find("users/grafana")
    assert user is not None
    password = user.find("password")
    assert password is not None and password.get("from_env") == "CLICKHOUSE_GRAFANA_PASSWORD"
    profile = root.find(f"profiles/{user.findtext('profile')}")
    assert profile is not None
    assert profile.findtext("readonly") == "2" and profile.findtext("allow_ddl") == "0"
    for limit in ("max_execution_time", "max_memory_usage"):
        assert profile.find(f"constraints/{limit}/max") is not None, limit
    grants = [g.text or "" for g in user.findall("grants/query")]
    assert grants == ["GRANT SELECT ON assay.*"]
    for grant in grants:  # ClickHouse parses it
        embedded_store.query("SELECT formatQuery({q:String})", {"q": f"{grant} TO grafana"})


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_the_collectors_evaluate_and_redact(name: str) -> None:
    services = compose(name)["services"].values()
    collectors = [s for s in services if s.get("command", [])[:2] == ["assay", "collector"]]
    assert collectors
    for service in collectors:
        command = " ".join(service.get("command", []))
        mounted = _volumes(service)
        assert "/etc/assay/assay.yaml" in command
        assert mounted["/etc/assay/assay.yaml"] == "./deploy/collector/assay.yaml"
    settings = load_settings(ROOT / "deploy" / "collector" / "assay.yaml")
    assert {"email", "card"} <= set(settings.redact)
    rules = compile_rules(load_evaluation_config(ROOT / "deploy" / "collector" / "assay.yaml"))
    assert len(rules) >= 3


def _generate(service: dict[str, Any], out: Path, environment: dict[str, str]) -> None:
    """Run the service's command as the container would, with its environment."""
    command = [interpolated(part) for part in service["command"]]
    assert command[:3] == ["assay", "grafana", "files"], command
    args = [str(out) if part == ROOT_IN_GRAFANA else part for part in command[1:]]
    env = {k: interpolated(str(v), environment) for k, v in service["environment"].items()}
    result = CliRunner().invoke(main, args, env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_grafana_reads_what_the_stacks_own_generator_wrote(name: str, tmp_path: Path) -> None:
    services = compose(name)["services"]
    writer, grafana = services["grafana-files"], services["grafana"]
    assert _volumes(writer)[ROOT_IN_GRAFANA] == _volumes(grafana)[ROOT_IN_GRAFANA]
    assert grafana["environment"]["GF_PATHS_PROVISIONING"] == f"{ROOT_IN_GRAFANA}/provisioning"
    assert grafana["depends_on"]["grafana-files"] == {"condition": "service_completed_successfully"}
    assert DASHBOARDS_PATH.startswith(ROOT_IN_GRAFANA)
    # Every budget can be set for the stack.
    passed = {k for k in writer["environment"] if k.startswith(ENV_PREFIX)}
    assert passed == {ENV_PREFIX + b.name.upper() for b in DEFAULTS}

    _generate(writer, tmp_path / "default", {})
    for path in (tmp_path / "default").rglob("*"):
        if path.is_file():
            relative = path.relative_to(tmp_path / "default")
            assert path.read_text() == (ROOT / "grafana" / relative).read_text(), relative

    slack = "https://hooks.slack.com/services/T0/B0/abc"
    _generate(
        writer, tmp_path / "set", {"ASSAY_ALERTS_TO": slack, "ASSAY_BUDGET_ERROR_RATE": "0.02"}
    )
    contact = yaml.safe_load(
        (tmp_path / "set/provisioning/alerting/contact-points.yaml").read_text()
    )
    assert contact["contactPoints"][0]["receivers"][0]["type"] == "slack"
    rules = (tmp_path / "set/provisioning/alerting/rules.yaml").read_text()
    assert "- 0.02\n" in rules


def test_the_demo_profile_sends_traffic_from_inside_the_stack() -> None:
    demo = compose("docker-compose.yml")["services"]["demo"]
    assert demo["profiles"] == ["demo"]
    script = " ".join(demo["command"])
    assert "assay demo --endpoint http://collector:4317" in script
    mounted = _volumes(demo)
    [target] = [t for t, s in mounted.items() if s == "./deploy/demo"]
    for called in re.findall(r"python (\S+)", script):
        assert called.startswith(target)
        assert (ROOT / "deploy" / "demo" / Path(called).name).is_file(), called
    assert demo["environment"]["ASSAY_URL"] == "http://collector:4318"
