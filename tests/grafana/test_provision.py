"""`assay grafana provision`: the real grafana-client against a local Grafana API stand-in."""

from __future__ import annotations

from click.testing import CliRunner

from assay.collector.cli import main
from assay.collector.grafana.dashboards import render_dashboards
from assay.collector.grafana.query import DATASOURCE_UID, PLUGIN_ID
from tests.conftest import free_port
from tests.grafana.fake_grafana import fake_grafana
from tests.grafana.panel_queries import dashboards

TOKEN = "glsa_test_token"


def _provision(url: str, *extra: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        main,
        ["grafana", "provision", "--url", url, "--token", TOKEN, *extra],
        catch_exceptions=False,
    )
    return result.exit_code, result.output


def test_provision_creates_the_datasource_folder_and_dashboards() -> None:
    with fake_grafana(TOKEN) as (url, grafana):
        code, output = _provision(url, "--clickhouse-host", "ch.internal", "--database", "assay")
        assert code == 0, output
        assert "data source created" in output and "folder created" in output
        [source] = grafana.datasources.values()
        assert source["type"] == PLUGIN_ID and source["uid"] == DATASOURCE_UID
        assert source["jsonData"]["host"] == "ch.internal"
        traces = source["jsonData"]["traces"]
        assert (traces["defaultDatabase"], traces["defaultTable"]) == ("assay", "otel_traces")
        assert traces["otelEnabled"] is True
        assert list(grafana.folders) == ["assay"] and grafana.folders["assay"]["title"] == "Assay"
        checked_in = {model["uid"]: model for model in dashboards().values()}
        assert {uid: d["dashboard"] for uid, d in grafana.dashboards.items()} == checked_in
        assert all(d["folderUid"] == "assay" for d in grafana.dashboards.values())
        assert "data source health: OK" in output


def test_a_second_run_updates_and_never_duplicates() -> None:
    with fake_grafana(TOKEN) as (url, grafana):
        assert _provision(url)[0] == 0
        code, output = _provision(url, "--clickhouse-host", "elsewhere")
        assert code == 0, output
        assert "data source updated" in output and "folder kept" in output
        assert len(grafana.datasources) == 1 and len(grafana.folders) == 1
        assert len(grafana.dashboards) == len(render_dashboards())
        assert {d["version"] for d in grafana.dashboards.values()} == {2}
        assert grafana.datasources[DATASOURCE_UID]["jsonData"]["host"] == "elsewhere"
        assert not [r for r in grafana.requests if r == ("POST", "/api/datasources")][1:]


def test_a_wrong_token_is_refused_with_grafanas_reason() -> None:
    with fake_grafana("another-token") as (url, grafana):
        code, output = _provision(url)
        assert code == 1
        assert "Grafana refused" in output and "Unauthorized" in output
        assert not grafana.datasources


def test_no_grafana_listening_is_said_plainly() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    code, output = _provision(url)
    assert code == 2, output
    assert f"no Grafana answers at {url}" in output and "Traceback" not in output
