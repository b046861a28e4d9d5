"""`assay deadletter list|show|retry`: the rows the store refused, kept in the dead-letter folder.

These read the folder itself (it is the collector's, 0700: run them as the collector's user).
`retry` only marks entries: the collector inserts them again at once if it is running, or at
its next start, and puts back in the folder what the store refuses again."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from assay.collector.cli_output import stdout_console
from assay.collector.deadletter import DeadLetter
from assay.collector.settings import deadletter_folder, load_settings
from assay.evaluators.formatting import plain


def _folder(config_file: Path | None, storage: Path | None, folder: Path | None) -> DeadLetter:
    if folder is None:
        try:
            settings = load_settings(config_file, storage=storage)
        except ValueError as exc:
            raise click.UsageError(str(exc)) from exc
        folder = deadletter_folder(settings)
    if not folder.is_dir():
        raise click.ClickException(f"no dead-letter folder at {folder}: nothing was refused there")
    try:
        return DeadLetter(folder, max_bytes=1 << 62)
    except PermissionError as exc:
        raise click.ClickException(
            f"cannot open {folder} ({exc.strerror}): run this as the collector's user"
        ) from exc


_OPTIONS = (
    click.option(
        "--storage",
        type=click.Path(path_type=Path),
        default=None,
        help="The collector's storage folder (default ./assay-data, or $ASSAY_STORAGE).",
    ),
    click.option(
        "--config",
        "config_file",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        default=None,
        help="The collector's assay.yaml.",
    ),
    click.option(
        "--dir",
        "folder",
        type=click.Path(path_type=Path),
        default=None,
        help="The dead-letter folder (default <storage>/deadletter, or $ASSAY_DEADLETTER_DIR).",
    ),
)


def _folder_options(command: Any) -> Any:
    for option in reversed(_OPTIONS):
        command = option(command)
    return command


def _when(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


@click.group()
def deadletter() -> None:
    """Rows the store refused for their values: list them, show one, retry them."""


@deadletter.command("list")
@_folder_options
@click.option("--json", "as_json", is_flag=True, help="One JSON object per entry, as a list.")
def list_entries(
    storage: Path | None, config_file: Path | None, folder: Path | None, as_json: bool
) -> None:
    """The entries, oldest first: table, rows, when, how often tried, the store's error."""
    entries = [entry.summary() for entry in _folder(config_file, storage, folder).entries()]
    if as_json:
        click.echo(json.dumps(entries, indent=2))
        return
    table = Table(header_style="bold")
    for column in ("id", "table", "rows", "created", "attempts", "state", "error"):
        table.add_column(column, overflow="fold")
    for entry in entries:
        table.add_row(
            entry["id"],
            entry["table"],
            str(entry["rows"]),
            _when(entry["created"]),
            str(entry["attempts"]),
            entry["state"],
            plain(entry["error"][:200]),  # the store's message quotes the refused values
        )
    stdout_console().print(table)
    click.echo(f"{len(entries)} entr{'y' if len(entries) == 1 else 'ies'}", err=True)


@deadletter.command()
@_folder_options
@click.argument("entry_id")
def show(
    storage: Path | None, config_file: Path | None, folder: Path | None, entry_id: str
) -> None:
    """One entry as JSON: its error and every row, by column."""
    try:
        entry = _folder(config_file, storage, folder).get(entry_id)
    except KeyError:
        raise click.ClickException(f"no dead-letter entry {entry_id!r}") from None
    body = entry.summary() | {
        "rows": [dict(zip(entry.columns, values, strict=False)) for values in entry.rows]
    }
    click.echo(json.dumps(body, indent=2))


@deadletter.command()
@_folder_options
@click.argument("entry_ids", nargs=-1)
@click.option("--all", "every", is_flag=True, help="Every entry in the folder.")
def retry(
    storage: Path | None,
    config_file: Path | None,
    folder: Path | None,
    entry_ids: tuple[str, ...],
    every: bool,
) -> None:
    """Ask the collector to insert entries again (after the cause was fixed: a schema, a
    setting, an upgrade). What the store refuses again comes back, with one attempt more."""
    letters = _folder(config_file, storage, folder)
    if every == bool(entry_ids):
        raise click.UsageError("name the entries to retry, or give --all")
    ids = [e.id for e in letters.entries() if not e.waiting_retry] if every else list(entry_ids)
    asked = 0
    for entry_id in ids:
        try:
            asked += letters.request_retry(entry_id)
        except KeyError:
            raise click.ClickException(f"no dead-letter entry {entry_id!r}") from None
    click.echo(
        f"{asked} entr{'y' if asked == 1 else 'ies'} marked for retry: the collector inserts "
        "them again now if it is running, else when it next starts (assay deadletter list "
        "shows what is left)",
        err=True,
    )
