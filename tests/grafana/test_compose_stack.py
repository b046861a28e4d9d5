"""ClickHouse and Grafana in Docker (testcontainers): provision, then every panel through Grafana.

Skipped cleanly where no Docker engine runs. Where one does, this starts ClickHouse and Grafana
with the ClickHouse plugin, applies Assay's migrations, loads a day of synthetic calls, runs
`assay grafana provision`, and asks Grafana's own HTTP API that the data source is healthy and
that every panel's query (variables expanded as the browser would) returns data.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from click.testing import CliRunner

from assay.collector.cli import main
from assay.collector.grafana.macros import interpolate_in_browser, interval_for
from assay.collector.grafana.query import DATASOURCE_UID
from assay.collector.store.server import ServerStore
from tests.docker_engine import require_docker
from tests.grafana.panel_queries import panel_queries, resolve_variables
from tests.grafana.seed import seed

pytestmark = pytest.mark.docker

CLICKHOUSE_IMAGE = "clickhouse/clickhouse-server:25.8"
GRAFANA_IMAGE = "grafana/grafana:12.2.0"


def _wait_for(url: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise AssertionError(f"{url} never answered")


def test_grafana_serves_every_panel_from_clickhouse() -> None:
    require_docker("the Grafana compose test")
    from testcontainers.clickhouse import ClickHouseContainer
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.network import Network

    with Network() as network:
        clickhouse = ClickHouseContainer(CLICKHOUSE_IMAGE).with_network(network)
        clickhouse = clickhouse.with_network_aliases("clickhouse")
        grafana = (
            DockerContainer(GRAFANA_IMAGE)
            .with_network(network)
            .with_env("GF_PLUGINS_PREINSTALL_SYNC", "grafana-clickhouse-datasource")
            .with_env("GF_AUTH_ANONYMOUS_ENABLED", "false")
            .with_exposed_ports(3000)
        )
        with clickhouse, grafana:
            store = ServerStore(
                f"http://{clickhouse.username}:{clickhouse.password}@"
                f"{clickhouse.get_container_host_ip()}:{clickhouse.get_exposed_port(8123)}/assay"
            )
            store.migrate()
            end = datetime.now(timezone.utc).replace(microsecond=0)
            seed(store, 50_000, end, hours=24 * 7)
            base = f"http://{grafana.get_container_host_ip()}:{grafana.get_exposed_port(3000)}"
            _wait_for(f"{base}/api/health")
            admin = base.replace("http://", "http://admin:admin@")
            login = ["--clickhouse-user", clickhouse.username]
            login += ["--clickhouse-password", clickhouse.password]
            result = CliRunner().invoke(
                main,
                ["grafana", "provision", "--url", admin, "--clickhouse-host", "clickhouse", *login],
            )
            assert result.exit_code == 0, result.output
            client = httpx.Client(base_url=base, auth=("admin", "admin"), timeout=60)
            health = client.get(f"/api/datasources/uid/{DATASOURCE_UID}/health").json()
            assert health["status"] == "OK", health
            _every_panel_returns_data(client, store, end)


def _every_panel_returns_data(client: httpx.Client, store: ServerStore, end: datetime) -> None:
    requests = {
        name: resolve_variables(store, name, end - timedelta(hours=24), end)
        for name in ("llm-monitoring", "evaluations", "experiments", "collectors")
    }
    for panel in panel_queries():
        request = requests[panel.dashboard]
        request.min_interval_s = interval_for(panel.min_interval)
        body = {
            "from": str(int(request.start.timestamp() * 1000)),
            "to": str(int(request.end.timestamp() * 1000)),
            "queries": [
                {
                    "refId": "A",
                    "datasource": {"uid": DATASOURCE_UID},
                    "editorType": "sql",
                    "format": panel.format,
                    "rawSql": interpolate_in_browser(panel.sql, request),
                    "intervalMs": int(request.interval_s * 1000),
                    "maxDataPoints": request.max_data_points,
                }
            ],
        }
        answer = client.post("/api/ds/query", json=body)
        assert answer.status_code == 200, (panel.id, answer.text)
        frames = answer.json()["results"]["A"].get("frames", [])
        assert frames and frames[0]["data"]["values"], panel.id
        assert any(len(column) for column in frames[0]["data"]["values"]), panel.id
