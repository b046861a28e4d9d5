"""The `assay` command: the collector, ad hoc queries and the demo."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import threading
from pathlib import Path
from typing import Any

import click
import httpx
from rich.table import Table
from rich.text import Text

from assay.collector.cli_grafana import grafana
from assay.collector.cli_output import error_line, stderr_console
from assay.collector.settings import load_settings
from assay.evaluators.client import (
    DEFAULT_URL,
    auth_headers,
    collector_url,
    refusal,
    unreachable,
)
from assay.evaluators.formatting import number, plain

err = stderr_console()


@click.group()
@click.version_option(package_name="assay")
def main() -> None:
    """Assay: LLM observability and evaluation on OpenTelemetry and ClickHouse."""


@main.command()
@click.option("--host", default=None, help="Interface to listen on (default 127.0.0.1).")
@click.option("--grpc-port", type=int, default=None, help="OTLP/gRPC port (default 4317).")
@click.option(
    "--http-port", type=int, default=None, help="OTLP/HTTP, API and UI port (default 4318)."
)
@click.option(
    "--storage",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder of the embedded store (default ./assay-data).",
)
@click.option(
    "--clickhouse-url",
    default=None,
    help="Use a ClickHouse server instead: http://user:pass@host:8123/assay",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="assay.yaml with further settings.",
)
@click.option(
    "--cluster",
    default=None,
    help="Distribute the schema over this ClickHouse cluster (with --clickhouse-url).",
)
@click.option(
    "--trace-content",
    type=click.Choice(["preview", "full"]),
    default=None,
    help="An LLM call's long content in otel_traces: a preview, the full text being in "
    "llm_calls (default), or in full in both.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Collector processes sharing the ports (with --clickhouse-url).",
)
@click.option(
    "--demo",
    is_flag=True,
    help="Send demo traffic through a local fake LLM if the store holds no LLM call yet "
    "(`assay demo` sends more at any time).",
)
@click.option("--demo-calls", type=int, default=200, show_default=True)
@click.option("--log-level", default="info", show_default=True)
def collector(
    host: str | None,
    grpc_port: int | None,
    http_port: int | None,
    storage: Path | None,
    clickhouse_url: str | None,
    config_file: Path | None,
    cluster: str | None,
    trace_content: str | None,
    workers: int,
    demo: bool,
    demo_calls: int,
    log_level: str,
) -> None:
    """Receive OTLP (gRPC and HTTP), store it in ClickHouse, serve the API."""
    from assay.collector.allocator import tune_allocator
    from assay.collector.engine_pages import unmap_engine_library
    from assay.collector.evaluation.config import load_evaluation_config
    from assay.collector.evaluation.rules import RulesError, compile_rules
    from assay.collector.pipeline import tune_gc
    from assay.collector.service import Endpoints, serve
    from assay.collector.workers import check_workers, run_workers

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        settings = load_settings(
            config_file,
            host=host,
            grpc_port=grpc_port,
            http_port=http_port,
            storage=storage,
            clickhouse_url=clickhouse_url,
            cluster=cluster,
            trace_content=trace_content,
        )
        evaluation = load_evaluation_config(config_file)
        check_workers(settings, workers)
        if workers > 1:
            if demo:
                raise ValueError("--demo runs with a single collector process, not with --workers")
            compile_rules(evaluation)  # checked here: the workers would each fail on it
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    if workers > 1:
        arguments = _without_option(sys.argv[2:], "--workers")
        sys.exit(run_workers(settings, workers, arguments))

    def on_ready(endpoints: Endpoints) -> None:
        # The engine's start-up is over: most of its library that stayed resident ran only then.
        unmap_engine_library()
        if demo:
            token = settings.api_tokens[0] if settings.api_tokens else None
            threading.Thread(
                target=_demo_then_tell, args=(endpoints, demo_calls, token), daemon=True
            ).start()

    tune_allocator(lean_engine=settings.engine_memory == "lean")
    tune_gc()
    try:
        asyncio.run(serve(settings, on_ready=on_ready, evaluation=evaluation))
    except RulesError as exc:  # the evaluation rules, compiled first thing by serve
        raise click.UsageError(str(exc)) from exc
    except Exception as exc:  # start-up failures: say what and why, no traceback
        from assay.collector.spool import SpoolFormatError
        from assay.collector.store.base import StoreError

        if isinstance(exc, (StoreError, OSError, SpoolFormatError)):
            err.print(f"[red]assay collector could not start:[/red] {exc}")
            sys.exit(1)
        raise


def stored_calls(url: str, token: str | None) -> int:
    """How many LLM calls the collector at `url` holds (its query API, as `assay query` asks)."""
    response = httpx.post(
        f"{url}/api/query",
        json={"sql": "SELECT count() AS calls FROM assay.llm_calls", "format": "json"},
        headers={"Authorization": f"Bearer {token}"} if token else {},
        timeout=60,
    )
    response.raise_for_status()
    return int(response.json()["rows"][0]["calls"])


def _demo_then_tell(endpoints: Any, calls: int, token: str | None) -> None:
    """Demo traffic on a first start only: a store that holds calls is left as it is."""
    from assay.collector.demo import run_demo

    try:
        held = stored_calls(endpoints.http_url, token)
        if held:
            sent = (
                f"The store holds {held:,} LLM calls: no demo traffic sent "
                "(`make demo` sends more; to start afresh, stop and remove ./assay-data)."
            )
        else:
            summary = run_demo(endpoint=endpoints.grpc_endpoint, calls=calls, quiet=True)
            sent = f"Demo traffic sent: {summary}"
    except Exception as exc:
        err.print(f"[red]demo traffic failed:[/red] {exc}")
        return
    err.print(
        f"\n[bold green]Assay is running.[/bold green] {sent}\n"
        + next_steps(endpoints.http_url, endpoints.grpc_endpoint)
    )


def next_steps(url: str, grpc_endpoint: str) -> str:
    """Where to look once the demo ran; the commands name the collector when it is not where
    the CLI (DEFAULT_URL) and the instrumentation (localhost:4317) look by default."""
    api = "" if url.startswith("http://") and url.endswith(":4318") else f"ASSAY_URL={url} "
    default_otlp = grpc_endpoint.startswith("http://") and grpc_endpoint.endswith(":4317")
    otlp = "" if default_otlp else f"OTEL_EXPORTER_OTLP_ENDPOINT={grpc_endpoint}"
    query = "SELECT model, count(), sum(cost_usd) FROM assay.llm_calls GROUP BY model"
    return (
        f"  OTLP gRPC  {grpc_endpoint}     OTLP HTTP + API  {url}\n"
        f"  Review UI  {url}/\n"
        f"  Health     {url}/api/health\n"
        f"  Calls      {url}/api/calls?limit=20\n"
        "  Query it from another terminal:\n"
        f'    {api}.venv/bin/assay query "{query}"\n'
        "  Instrument your own service: import assay.instrumentation.auto"
        + (f" (and run it with {otlp})" if otlp else "")
        + "\n  Try it without an API key: .venv/bin/assay fake-provider"
        " (README: Instrument your service)" + "\n  Stop with Ctrl-C.\n"
    )


@main.command()
@click.argument("sql")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    show_default=True,
)
@click.option("--url", default=None, help=f"Collector API (default $ASSAY_URL or {DEFAULT_URL}).")
@click.option("--max-rows", type=int, default=None)
def query(sql: str, fmt: str, url: str | None, max_rows: int | None) -> None:
    """Run read-only SQL against the store, through the collector's API."""
    base = collector_url(url)
    body: dict[str, Any] = {"sql": sql, "format": "csv" if fmt == "csv" else "json"}
    if max_rows:
        body["max_rows"] = max_rows
    try:
        response = httpx.post(f"{base}/api/query", json=body, headers=auth_headers(), timeout=120)
    except httpx.HTTPError as exc:
        err.print(
            f"{unreachable(base, exc)}. Start one with "
            "`assay collector` (or `make run`), or point --url / ASSAY_URL at it.",
            markup=False,
        )
        sys.exit(2)
    if response.status_code != 200:
        try:
            message = response.json().get("error", response.text)
        except ValueError:
            message = response.text
        err.print(error_line(refusal(response.status_code, message)))
        sys.exit(1)
    if fmt == "csv":
        click.echo(response.text, nl=False)
        return
    result = response.json()
    if fmt == "json":
        click.echo(json.dumps(result["rows"], indent=2, ensure_ascii=False))
        return
    table = Table(header_style="bold")
    for column in result["columns"]:
        table.add_column(plain(column), overflow="fold")
    for row in result["rows"]:
        table.add_row(*(_cell(v) for v in row.values()))
    stdout_console().print(table)
    err.print(f"{result['row_count']} row(s){' (truncated)' if result.get('truncated') else ''}")


def _cell(value: Any) -> str | Text:
    if value is None:
        return "NULL"
    if isinstance(value, float):
        return number(value, significant=6)
    if isinstance(value, (dict, list)):
        value = json.dumps(value, ensure_ascii=False)
    return plain(value)


def _without_option(arguments: list[str], name: str) -> list[str]:
    """`arguments` without `name VALUE` / `name=VALUE`."""
    kept: list[str] = []
    skip = False
    for argument in arguments:
        if skip:
            skip = False
        elif argument == name:
            skip = True
        elif not argument.startswith(f"{name}="):
            kept.append(argument)
    return kept


@main.command()
@click.option("--cluster", default=None, help="Render for this ClickHouse cluster.")
@click.option("--database", default=None, help="Database name (default assay).")
def schema(cluster: str | None, database: str | None) -> None:
    """Print the SQL schema (every migration), single-node or for a cluster."""
    from assay.collector.store.base import DEFAULT_DATABASE
    from assay.collector.store.cluster import ClusterSchemaError
    from assay.collector.store.migrations import schema_script

    try:
        click.echo(schema_script(database or DEFAULT_DATABASE, cluster), nl=False)
    except ClusterSchemaError as exc:
        raise click.ClickException(str(exc)) from exc


@main.command()
@click.option(
    "--endpoint",
    default=None,
    help="Collector OTLP endpoint (default $OTEL_EXPORTER_OTLP_ENDPOINT or http://localhost:4317).",
)
@click.option("--calls", type=int, default=200, show_default=True, help="LLM calls to send.")
def demo(endpoint: str | None, calls: int) -> None:
    """Send realistic LLM traffic through a local fake LLM provider to a collector."""
    from assay.collector.demo import run_demo

    endpoint = endpoint or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or "http://localhost:4317"
    if "://" not in endpoint:
        endpoint = f"http://{endpoint}"
    summary = run_demo(endpoint=endpoint, calls=calls)
    err.print(f"[green]demo done:[/green] {summary}")


@main.command("fake-provider")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=None, help="Port (default 8787).")
@click.option(
    "--script",
    "script_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help='JSON list of answers: {"when": TEXT or [TEXTS], "reply": TEXT | "error": STATUS}.',
)
@click.option("--latency", type=float, default=0.05, show_default=True, help="Seconds per answer.")
def fake_provider(host: str, port: int | None, script_file: Path | None, latency: float) -> None:
    """Serve fake OpenAI and Anthropic APIs, to try an instrumented app without an API key."""
    import signal

    from assay.collector.demo.fake_provider import (
        DEFAULT_PORT,
        FakeProvider,
        ScriptError,
        load_script,
    )

    try:
        script = load_script(script_file) if script_file else None
    except ScriptError as exc:
        raise click.UsageError(str(exc)) from exc
    provider = FakeProvider(
        script=script, latency=latency, host=host, port=DEFAULT_PORT if port is None else port
    )
    try:
        provider.start()
    except OSError as exc:
        raise click.ClickException(
            f"cannot listen on {host}:{port or DEFAULT_PORT}: {exc}"
        ) from exc
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    click.echo(provider.banner(), err=True)
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        provider.stop()


from assay.collector.cli_deadletter import deadletter  # noqa: E402
from assay.collector.cli_experiments import eval_group, experiments  # noqa: E402
from assay.collector.cli_output import stdout_console  # noqa: E402
from assay.collector.cli_prices import prices  # noqa: E402

main.add_command(experiments)
main.add_command(prices)
main.add_command(eval_group)
main.add_command(grafana)
main.add_command(deadletter)

if __name__ == "__main__":
    main()
