"""How the CLI prints: tables in full outside a terminal (a CI log is not 80 columns wide),
Markdown for job summaries, JSON for scripts."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from assay.evaluators.formatting import plain, terminal_safe

FORMATS = ("table", "markdown", "json")
# Outside a terminal nothing is folded or cut: a line is as long as its table needs.
_UNBOUNDED_WIDTH = 100_000

F = TypeVar("F", bound=Callable[..., Any])


def stdout_console() -> Console:
    """A console for stdout: the terminal's width in a terminal, unbounded elsewhere."""
    if sys.stdout.isatty():
        return Console()
    return Console(width=_UNBOUNDED_WIDTH, soft_wrap=True)


def stderr_console() -> Console:
    """A console for messages on stderr: a long line stays one line (a CI log or a terminal
    wraps it, or not, as it likes; rich's 80 columns outside a terminal would break it)."""
    return Console(stderr=True, soft_wrap=True)


def format_option(*choices: str) -> Callable[[F], F]:
    """`--format` with these choices (default: a table)."""
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(choices or FORMATS),
        default="table",
        show_default=True,
        help="table (full width outside a terminal), markdown (for CI job summaries) or json.",
    )


def error_line(message: Any, label: str = "error") -> Text:
    """`error: <message>` with the label in red and the message (often naming stored values or
    the user's input) as plain text."""
    return Text.assemble((f"{label}:", "red"), " ", plain(message))


def print_json(payload: Any) -> None:
    click.echo(json.dumps(payload, indent=2, ensure_ascii=False, default=str))


def markdown_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table; pipes and line breaks in cells are escaped."""

    def cell(value: Any) -> str:
        text = "" if value is None else terminal_safe(value)
        return text.replace("|", "\\|").replace("\r", " ").replace("\n", "<br>")

    lines = [
        "| " + " | ".join(cell(c) for c in columns) + " |",
        "| " + " | ".join("---" for _ in columns) + " |",
    ]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def print_rows(
    columns: Sequence[str], rows: Sequence[Sequence[Any]], fmt: str, *, title: str = ""
) -> None:
    """Rows as a table (rich, or Markdown); JSON is the caller's (its own shape)."""
    if fmt == "markdown":
        if title:
            click.echo(f"**{title}**\n")
        click.echo(markdown_table(columns, rows))
        return
    table = Table(header_style="bold", title=title or None, title_justify="left")
    for column in columns:
        table.add_column(plain(column), overflow="fold")
    for row in rows:
        table.add_row(*(plain(value) for value in row))
    stdout_console().print(table)
