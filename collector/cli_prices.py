"""`assay prices`: the price table in force, loading a newer one, pricing stored calls again.

All three go through the collector's API: the collector prices every call it stores, and with
the embedded store it is the only process that may open the store's folder."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from assay.collector.cli_output import stderr_console, stdout_console
from assay.evaluators.client import DEFAULT_URL, CollectorClient, CollectorError

out = stdout_console()
err = stderr_console()

_URL = click.option(
    "--url", default=None, help=f"Collector API (default $ASSAY_URL or {DEFAULT_URL})."
)
_PRICE_COLUMNS = (
    ("input", "input"),
    ("cache read", "cached_input"),
    ("cache write", "cache_write"),
    ("output", "output"),
    ("reasoning", "reasoning"),
    ("audio in", "audio_input"),
    ("audio out", "audio_output"),
    ("batch in", "batch_input"),
    ("batch out", "batch_output"),
)


def _client(url: str | None, timeout: float = 60) -> CollectorClient:
    return CollectorClient(url, timeout=timeout)


def _fail(exc: Exception) -> None:
    err.print(f"[red]error:[/red] {exc}")
    sys.exit(2 if isinstance(exc, CollectorError) and exc.status is None else 1)


@click.group(invoke_without_command=True)
@click.pass_context
@_URL
@click.option("--model", "pattern", default=None, help="Only models whose name contains this.")
@click.option("--json", "as_json", is_flag=True, help="The whole table as a price file (JSON).")
def prices(ctx: click.Context, url: str | None, pattern: str | None, as_json: bool) -> None:
    """The price table the collector prices calls with (USD per 1M tokens), and its version."""
    if ctx.invoked_subcommand is not None:
        return
    try:
        table = _client(url).prices()
    except CollectorError as exc:
        _fail(exc)
        return
    if as_json:
        click.echo(json.dumps(table, indent=2))
        return
    models: dict[str, dict[str, Any]] = table["models"]
    shown = Table(header_style="bold")
    shown.add_column("model")
    shown.add_column("provider")
    for title, _ in _PRICE_COLUMNS:
        shown.add_column(title, justify="right")
    for name, entry in models.items():
        if pattern and pattern.lower() not in name:
            continue
        shown.add_row(
            name,
            entry["provider"],
            *(_price(entry.get(field)) for _, field in _PRICE_COLUMNS),
        )
    out.print(shown)
    err.print(
        f"version [bold]{table['version']}[/bold] ({table['origin']}), prices taken "
        f"{table['taken']}; {len(models)} models. Empty: billed at the input or output price. "
        "A model not listed (or a local one, e.g. Ollama) is unpriced: its cost is NULL."
    )


def _price(value: Any) -> str:
    return "" if value is None else f"{value:g}"


def _not_a_number(constant: str) -> float:
    # Python reads NaN and Infinity, which JSON has not: say so here, not when sending.
    raise ValueError(f"{constant} is not a JSON number")


@prices.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_URL
def load(file: Path, url: str | None) -> None:
    """Put a price file in force (the shape of prices.json: "taken" and "models"; its entries
    add models or replace fields of known ones). Calls stored from now on are priced with it;
    `assay prices recompute` prices stored ones again."""
    try:
        raw = json.loads(file.read_text(encoding="utf-8"), parse_constant=_not_a_number)
    except (OSError, ValueError) as exc:
        _fail(ValueError(f"cannot read {file}: {exc}"))
        return
    try:
        loaded = _client(url).load_prices(raw)
    except CollectorError as exc:
        _fail(exc)
        return
    err.print(
        f"[green]prices in force:[/green] version {loaded['version']} (taken {loaded['taken']})"
    )


@prices.command()
@click.option(
    "--since",
    required=True,
    help="Start of the time range (ISO date or date-time, UTC unless it says otherwise).",
)
@click.option("--until", default=None, help="End of the time range, excluded (default: now).")
@_URL
def recompute(since: str, until: str | None, url: str | None) -> None:
    """Price the calls stored in a time range again with the prices in force.

    Rows are updated in place (never a second row per call) and the dashboard rollups are
    corrected; running it again changes nothing."""
    for value in (since, until):
        if value:
            try:
                dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError as exc:
                raise click.BadParameter(f"{value!r}: {exc}") from exc
    try:
        done = _client(url, timeout=3600).recompute_costs(since, until)
    except CollectorError as exc:
        _fail(exc)
        return
    err.print(
        f"[green]{done['calls']} call(s) priced again[/green] with version {done['version']} "
        f"in {done['seconds']} s: priced {done['priced_before']} → {done['priced_after']}, "
        f"cost ${done['cost_before']:.6f} → ${done['cost_after']:.6f}"
    )
