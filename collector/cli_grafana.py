"""`assay grafana ...`: put Assay's data source and dashboards into a running Grafana."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from assay.collector.cli_output import stderr_console

err = stderr_console()


@click.group()
def grafana() -> None:
    """Grafana: provision the ClickHouse data source and the Assay dashboards."""


@grafana.command()
@click.option("--url", envvar="GRAFANA_URL", default="http://localhost:3000", show_default=True)
@click.option(
    "--token",
    envvar="GRAFANA_TOKEN",
    default=None,
    help="A service account token (or use user:password in --url).",
)
@click.option(
    "--clickhouse-host",
    default="clickhouse",
    show_default=True,
    help="ClickHouse as Grafana's server reaches it.",
)
@click.option("--clickhouse-port", type=int, default=9000, show_default=True)
@click.option("--clickhouse-protocol", type=click.Choice(["native", "http"]), default="native")
@click.option("--clickhouse-user", default="default", show_default=True)
@click.option("--clickhouse-password", envvar="CLICKHOUSE_PASSWORD", default="")
@click.option("--clickhouse-secure", is_flag=True, help="TLS to ClickHouse.")
@click.option("--database", default="assay", show_default=True)
@click.option("--no-health-check", is_flag=True, help="Do not ask Grafana to test the source.")
def provision(
    url: str,
    token: str | None,
    clickhouse_host: str,
    clickhouse_port: int,
    clickhouse_protocol: str,
    clickhouse_user: str,
    clickhouse_password: str,
    clickhouse_secure: bool,
    database: str,
    no_health_check: bool,
) -> None:
    """Create or update the data source and the five dashboards (folder "Assay").

    Alert rules come with the provisioning files only (`assay grafana files`)."""
    try:
        from grafana_client import GrafanaApi
        from grafana_client.client import GrafanaException

        from assay.collector.grafana.datasource import ClickHouseServer
        from assay.collector.grafana.provision import provision as push
    except ImportError as exc:
        err.print(f"[red]{exc.name} is missing:[/red] pip install 'assay[grafana]'")
        sys.exit(2)
    server = ClickHouseServer(
        host=clickhouse_host,
        port=clickhouse_port,
        protocol=clickhouse_protocol,
        username=clickhouse_user,
        password=clickhouse_password,
        secure=clickhouse_secure,
        database=database,
    )
    api = GrafanaApi.from_url(url, credential=token, timeout=30)
    try:
        result = push(api, server, check_health=not no_health_check)
    except GrafanaException as exc:
        err.print(f"[red]Grafana refused:[/red] {exc}")
        sys.exit(1)
    except OSError as exc:
        err.print(f"[red]no Grafana answers at {url}:[/red] {exc}")
        sys.exit(2)
    err.print(f"[green]data source {result.datasource}[/green], folder {result.folder}")
    for dashboard in result.dashboards:
        err.print(f"  dashboard {dashboard}")
    if result.health:
        status, message = result.health.get("status"), result.health.get("message", "")
        err.print(f"  data source health: {status} {message}")


@grafana.command()
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("grafana"),
    show_default=True,
    help="Folder to write provisioning/ and dashboards/ into.",
)
@click.option(
    "--budget",
    "budget_items",
    multiple=True,
    metavar="NAME=VALUE",
    help="Another value for a budget (repeatable); ASSAY_BUDGET_<NAME> works too.",
)
@click.option(
    "--alerts-to",
    envvar="ASSAY_ALERTS_TO",
    default="",
    help="Where alerts go: a Slack webhook URL, e-mail addresses, another https:// URL (a "
    "webhook), or slack:/webhook:/discord:/teams:/googlechat: and a URL.",
)
def files(out: Path, budget_items: tuple[str, ...], alerts_to: str) -> None:
    """Write the provisioning files (data source, dashboards, alert rules, contact point,
    notification policy) and the dashboards, as checked in under grafana/, with your budgets
    and alert destination, for a Grafana that reads them from disk."""
    try:
        from assay.collector.grafana.alerts import ContactError
        from assay.collector.grafana.budgets import BudgetError, budgets, overrides_from
        from assay.collector.grafana.files import write_files
    except ImportError as exc:
        err.print(f"[red]{exc.name} is missing:[/red] pip install 'assay[dashboards]'")
        sys.exit(2)
    try:
        written = write_files(out, budgets(overrides_from(budget_items)), alerts_to)
    except (BudgetError, ContactError) as exc:
        err.print(f"[red]{exc}[/red]")
        sys.exit(2)
    for path in written:
        err.print(f"  {path}")
