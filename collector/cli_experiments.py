"""`assay experiments list|show|compare` and `assay eval run FILE`, the CI gate."""

from __future__ import annotations

import datetime as dt
import os
import runpy
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from assay.evaluators.client import DEFAULT_URL, CollectorClient, CollectorError

out = Console()
err = Console(stderr=True)

# Exit codes of `assay eval run`.
EXIT_PASSED = 0
EXIT_GATE_FAILED = 1  # a threshold missed, a significant regression, too many failed items
EXIT_ERROR = 2  # the file could not run, no experiment ran, no collector, unknown baseline

_URL_HELP = f"Collector API (default $ASSAY_URL or {DEFAULT_URL})."


def _fail(message: str, code: int = EXIT_ERROR) -> None:
    err.print(f"[red]error:[/red] {message}")
    sys.exit(code)


def _when(value: Any) -> str:
    if not value:
        return ""
    text = str(value).replace("T", " ")
    return text[:19]


@click.group("experiments")
def experiments() -> None:
    """List, show and compare experiment runs."""


@experiments.command("list")
@click.option("--name", default=None, help="Only the runs of this experiment name.")
@click.option("--limit", type=int, default=30, show_default=True)
@click.option("--url", default=None, help=_URL_HELP)
def list_experiments(name: str | None, limit: int, url: str | None) -> None:
    """The history of runs, newest first, with each evaluator's mean."""
    try:
        runs = CollectorClient(url).list_experiments(name, limit)
    except CollectorError as exc:
        _fail(str(exc))
    table = Table(header_style="bold")
    for column in ("started (UTC)", "name", "id", "dataset", "items", "status", "scores", "cost"):
        table.add_column(column, overflow="fold")
    for run in runs:
        summary = run.get("summary") or {}
        means = ", ".join(
            f"{evaluator}={s['mean']:.3f}" if s.get("mean") is not None else f"{evaluator}=–"
            for evaluator, s in (summary.get("evaluators") or {}).items()
        )
        cost = (summary.get("task") or {}).get("cost_usd")
        table.add_row(
            _when(run["started_at"]),
            run["name"],
            run["experiment_id"][:12],
            f"{run['dataset_name']}@{run['dataset_version']}",
            str(run["item_count"]),
            run["status"],
            means,
            f"${cost:.4f}" if cost is not None else "",
        )
    out.print(table)
    err.print(f"{len(runs)} run(s)")


@experiments.command("show")
@click.argument("ref")
@click.option("--items", "show_items", type=int, default=20, show_default=True)
@click.option("--url", default=None, help=_URL_HELP)
def show_experiment(ref: str, show_items: int, url: str | None) -> None:
    """One run (by id, or the latest run of a name): summary and items."""
    from assay.evaluators.results import ExperimentResult

    try:
        result = ExperimentResult.load(ref, client=CollectorClient(url))
    except CollectorError as exc:
        _fail(str(exc))
    out.print(result)
    out.print(
        f"experiment {result.experiment_id} · git {result.git_commit[:12] or '–'} · "
        f"params {result.params or '{}'}"
    )
    if show_items <= 0:
        return
    table = Table(header_style="bold")
    for column in ("item", "input", "expected", "output", *result.evaluator_names):
        table.add_column(column, overflow="fold")
    for item in result.items[:show_items]:
        scores = [
            f"{item.scores[n].value:.2f}" if n in item.scores and not item.failed else "–"
            for n in result.evaluator_names
        ]
        output = item.output_text if not item.failed else f"[red]{item.status}: {item.error}[/red]"
        table.add_row(
            item.item_id, _short(item.input), _short(item.expected), _short(output, 80), *scores
        )
    out.print(table)


def _short(value: Any, limit: int = 50) -> str:
    from assay.evaluators.results import output_text

    text = " ".join(output_text(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@experiments.command("compare")
@click.argument("a")
@click.argument("b")
@click.option("--alpha", type=float, default=0.05, show_default=True)
@click.option("--url", default=None, help=_URL_HELP)
def compare_experiments(a: str, b: str, alpha: float, url: str | None) -> None:
    """Compare run B with run A (ids, or names for their latest runs)."""
    from assay.evaluators.comparison import compare

    try:
        comparison = compare(a, b, alpha=alpha, client=CollectorClient(url))
    except CollectorError as exc:
        _fail(str(exc))
    out.print(comparison)


# --- the CI gate --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Threshold:
    evaluator: str
    metric: str  # mean | pass_rate
    minimum: float

    @classmethod
    def parse(cls, text: str) -> Threshold:
        name, sep, value = text.partition("=")
        evaluator, _, metric = name.strip().partition(".")
        metric = metric or "mean"
        try:
            minimum = float(value)
        except ValueError:
            minimum = float("nan")
        if not sep or not evaluator or metric not in ("mean", "pass_rate") or not 0 <= minimum <= 1:
            raise click.BadParameter(
                f"{text!r}: use EVALUATOR=0.8 (its mean) or EVALUATOR.pass_rate=0.8",
                param_hint="--fail-under",
            )
        return cls(evaluator, metric, minimum)


def _gate(
    result: Any,
    thresholds: list[Threshold],
    baseline: str | None,
    alpha: float,
    max_failed: int,
    client: CollectorClient,
) -> list[str]:
    """The reasons the run fails the gate (none: it passes)."""
    from assay.evaluators.comparison import compare
    from assay.evaluators.results import ExperimentResult

    reasons = []
    summary = result.summary
    failed = len(result.failed_items)
    if failed > max_failed:
        reasons.append(f"{failed} item(s) failed (at most {max_failed} allowed)")
    for threshold in thresholds:
        if threshold.evaluator not in summary:
            _fail(
                f"--fail-under names {threshold.evaluator!r}, which {result.name!r} does not "
                f"run (it runs {', '.join(summary) or 'no evaluator'})"
            )
        value = summary[threshold.evaluator][threshold.metric]
        if value is None or value < threshold.minimum:
            shown = "–" if value is None else f"{value:.3f}"
            reasons.append(
                f"{threshold.evaluator} {threshold.metric} {shown} < {threshold.minimum}"
            )
    if baseline:
        runs = [
            run
            for run in client.list_experiments(baseline, 20)
            if run["experiment_id"] != result.experiment_id and run["status"] == "completed"
        ]
        if not runs:
            _fail(f"no completed run of the baseline experiment {baseline!r} is stored")
        base = ExperimentResult.load(runs[0]["experiment_id"], client=client)
        comparison = compare(base, result, alpha=alpha)
        out.print(comparison)
        for name in comparison.regressions():
            c = comparison.evaluators[name]
            reasons.append(
                f"{name} regressed against {baseline}: {c.delta:+.3f} "
                f"(95% CI {c.ci[0]:+.3f}..{c.ci[1]:+.3f}, p={c.p_value:.3g})"
                if c.ci and c.delta is not None and c.p_value is not None
                else f"{name} regressed against {baseline}"
            )
    return reasons


@click.group("eval")
def eval_group() -> None:
    """Run experiments from files (the CI gate)."""


@eval_group.command("run")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--fail-under",
    "fail_under",
    multiple=True,
    help="EVALUATOR=X fails the run when that evaluator's mean is below X "
    "(EVALUATOR.pass_rate=X for its pass rate). Repeatable.",
)
@click.option(
    "--baseline",
    default=None,
    help="Fail on a significant regression against the "
    "latest completed run of this experiment name.",
)
@click.option(
    "--alpha",
    type=float,
    default=0.05,
    show_default=True,
    help="Significance level of the regression test.",
)
@click.option(
    "--max-failed-items",
    type=int,
    default=0,
    show_default=True,
    help="Items whose task may fail (error or timeout) before the run fails.",
)
@click.option("--url", default=None, help=_URL_HELP)
def run_file(
    file: Path,
    fail_under: tuple[str, ...],
    baseline: str | None,
    alpha: float,
    max_failed_items: int,
    url: str | None,
) -> None:
    """Run the experiment(s) FILE defines (a Python script calling `evaluate`) and gate on them.

    Exit codes: 0 passed; 1 a threshold was missed, the run regressed significantly against
    the baseline, or items failed; 2 the file or the collector could not be used.
    """
    from assay.evaluators.experiment import watch_results

    thresholds = [Threshold.parse(text) for text in fail_under]
    if url:
        os.environ["ASSAY_URL"] = url  # the script's evaluate() records there too
    client = CollectorClient(url)
    try:
        client.health()
    except CollectorError as exc:
        _fail(str(exc))
    results: list[Any] = []
    sys.path.insert(0, str(file.resolve().parent))
    try:
        with watch_results(results.append):
            runpy.run_path(str(file), run_name="__main__")
    except SystemExit as exc:
        if exc.code not in (None, 0):
            _fail(f"{file} exited with {exc.code}")
    except Exception:
        err.print_exception(max_frames=8)
        _fail(f"{file} raised an exception (above); no gate was applied")
    finally:
        sys.path.remove(str(file.resolve().parent))
    if not results:
        _fail(f"{file} ran no experiment: call evaluate(...) in it")
    reasons: list[str] = []
    for result in results:
        out.print(result)
        try:
            reasons += [
                f"{result.name}: {reason}"
                for reason in _gate(result, thresholds, baseline, alpha, max_failed_items, client)
            ]
        except CollectorError as exc:
            _fail(str(exc))
    if reasons:
        for reason in reasons:
            err.print(f"[red]FAIL[/red] {reason}")
        sys.exit(EXIT_GATE_FAILED)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%H:%M:%S")
    err.print(f"[green]PASS[/green] {len(results)} experiment(s) at {stamp} UTC")
    sys.exit(EXIT_PASSED)
