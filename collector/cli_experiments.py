"""`assay experiments list|show|compare` and `assay eval run FILE`, the CI gate."""

from __future__ import annotations

import datetime as dt
import os
import runpy
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click
from rich.table import Table
from rich.text import Text

from assay.collector.cli_output import (
    error_line,
    format_option,
    print_json,
    print_rows,
    stderr_console,
    stdout_console,
)
from assay.evaluators.client import DEFAULT_URL, CollectorClient, CollectorError
from assay.evaluators.formatting import money_of_calls, plain, when

if TYPE_CHECKING:
    from assay.evaluators.results import ExperimentResult

err = stderr_console()

# Exit codes of `assay eval run`.
EXIT_PASSED = 0
EXIT_GATE_FAILED = 1  # a threshold missed, a regression against the baseline, failed items
EXIT_ERROR = 2  # the file could not run, no experiment ran, no collector, bad arguments

_URL_HELP = f"Collector API (default $ASSAY_URL or {DEFAULT_URL})."


def _fail(message: str, code: int = EXIT_ERROR) -> NoReturn:
    err.print(error_line(message), soft_wrap=True)
    sys.exit(code)


def _when(value: Any) -> str:
    """The API's ISO time (UTC when it names no zone) as people read it, zone included."""
    if not value:
        return ""
    try:
        return when(dt.datetime.fromisoformat(str(value)))
    except ValueError:
        return str(value)


@click.group("experiments")
def experiments() -> None:
    """List, show and compare experiment runs."""


@experiments.command("list")
@click.option("--name", default=None, help="Only the runs of this experiment name.")
@click.option("--limit", type=int, default=30, show_default=True)
@format_option()
@click.option("--url", default=None, help=_URL_HELP)
def list_experiments(name: str | None, limit: int, fmt: str, url: str | None) -> None:
    """The history of runs, newest first, with each evaluator's mean and the gate's verdict."""
    try:
        runs = CollectorClient(url).list_experiments(name, limit)
    except CollectorError as exc:
        _fail(str(exc))
    if fmt == "json":
        print_json(runs)
        return
    columns = ["started (UTC)", "name", "id", "dataset", "items", "status", "verdict", "scores"]
    rows = []
    for run in runs:
        summary = run.get("summary") or {}
        means = ", ".join(
            _mean_cell(evaluator, s) for evaluator, s in (summary.get("evaluators") or {}).items()
        )
        task = summary.get("task") or {}
        failed = task.get("failed") or 0
        # A summary stored before the unpriced calls were counted has no count: "not counted".
        cost = money_of_calls(
            task.get("cost_usd"), task.get("unpriced_calls"), task.get("unpriced_failed")
        )
        repetitions = run.get("repetitions") or 1
        rows.append(
            [
                _when(run["started_at"]),
                run["name"],
                run["experiment_id"][:12],
                f"{run['dataset_name']}@{run['dataset_version']}",
                str(run["item_count"])
                + (f" ({repetitions}×)" if repetitions > 1 else "")
                + (f", {failed} failed" if failed else ""),
                run["status"],
                run.get("verdict") or "–",
                means + (f" · {cost}" if cost else ""),
            ]
        )
    print_rows(columns, rows, fmt)
    err.print(f"{len(runs)} run(s)")


def _mean_cell(evaluator: str, summary: dict[str, Any]) -> str:
    """An evaluator's mean as the list shows it, with what the number alone would hide: that
    lower is better, and how many items it could not score (left out of the mean)."""
    mean = summary.get("mean")
    notes = []
    if summary.get("direction") == "lower_is_better":
        notes.append("lower is better")
    errors = sum((summary.get("errors") or {}).values())
    if errors:
        notes.append(f"{errors} error{'s' if errors > 1 else ''}")
    shown = "–" if mean is None else f"{mean:.3f}"
    return f"{evaluator}={shown}" + (f" ({', '.join(notes)})" if notes else "")


@experiments.command("show")
@click.argument("ref")
@click.option("--items", "show_items", type=int, default=20, show_default=True)
@format_option("table", "json")
@click.option("--url", default=None, help=_URL_HELP)
def show_experiment(ref: str, show_items: int, fmt: str, url: str | None) -> None:
    """One run (by id, or the latest run of a name): summary and items."""
    from assay.evaluators.results import ExperimentResult, score_cell

    try:
        client = CollectorClient(url)
        payload = client.get_experiment(ref)
    except CollectorError as exc:
        _fail(str(exc))
    if fmt == "json":
        print_json(payload)
        return
    result = ExperimentResult.from_payload(payload)
    out = stdout_console()
    out.print(result)
    out.print(
        plain(
            f"experiment {result.experiment_id} · git {result.git_commit[:12] or '–'} · "
            f"params {result.params or '{}'}"
        )
    )
    for reason in result.gate.get("reasons") or []:
        out.print(error_line(reason, "gate"))
    if show_items <= 0:
        return
    table = Table(header_style="bold")
    repeated = result.repetitions > 1
    columns = ["item", *(["rep"] if repeated else []), "input", "expected", "output"]
    for column in (*columns, *result.evaluator_names):
        table.add_column(plain(column), overflow="fold")
    for item in result.items[:show_items]:
        output = plain(_short(item.output_text if not item.failed else item.error, 80))
        if item.failed:
            output = Text.assemble((f"{item.status}: ", "red"), output)
        table.add_row(
            plain(item.item_id),
            *([str(item.repetition)] if repeated else []),
            plain(_short(item.input)),
            plain(_short(item.expected)),
            output,
            *(plain(score_cell(item, n, 2)) for n in result.evaluator_names),
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
@format_option("table", "json")
@click.option("--url", default=None, help=_URL_HELP)
def compare_experiments(a: str, b: str, alpha: float, fmt: str, url: str | None) -> None:
    """Compare run B with run A (ids, or names for their latest runs); the same run twice gives
    its noise floor (with repetitions)."""
    from assay.evaluators.comparison import compare

    try:
        comparison = compare(a, b, alpha=alpha, client=CollectorClient(url))
    except CollectorError as exc:
        _fail(str(exc))
    if fmt == "json":
        print_json(comparison.to_dict())
        return
    stdout_console().print(comparison)


# --- the CI gate --------------------------------------------------------------------------------


def _find_baseline(
    client: CollectorClient, ref: str, run: ExperimentResult
) -> ExperimentResult | None:
    """The run `ref` names: the latest run of that name that can be a baseline (completed, not
    failed by a gate), else the run with that id. None for the first run of an experiment
    gated against its own name; a GateError when nothing fits."""
    from assay.evaluators.gate import GateError
    from assay.evaluators.results import ExperimentResult

    runs = client.list_experiments(ref, 1, baseline=True)
    if runs:
        return ExperimentResult.load(runs[0]["experiment_id"], client=client)
    try:
        payload = client.get_experiment(ref)
    except CollectorError as exc:
        if exc.status != 404:
            raise
        payload = None
    if payload is not None and payload["experiment"]["experiment_id"] == ref:
        found = ExperimentResult.from_payload(payload)
        if found.status != "completed":
            raise GateError(f"the baseline run {ref} is {found.status}, not completed")
        return found
    if ref == run.name:
        return None  # its first gated run: nothing to compare with yet
    raise GateError(
        f"--baseline {ref}: no run of that name (or with that id) can be the baseline: none "
        "is stored that completed without failing a gate"
    )


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
    "(EVALUATOR.pass_rate=X for its pass rate; a lower-is-better mean is read as 1 - mean). "
    "Repeatable.",
)
@click.option(
    "--baseline",
    default=None,
    help="Compare with the latest run of this experiment name that completed and did not fail "
    "a gate (or with the run of this id); fail on a drop beyond --max-drop or a significant one.",
)
@click.option(
    "--max-drop",
    "max_drop",
    multiple=True,
    help="EVALUATOR=X: the largest drop of its mean from the baseline that passes "
    "(EVALUATOR.pass_rate=X for its pass rate). Default 0.05 on every mean. Repeatable.",
)
@click.option(
    "--alpha",
    type=float,
    default=0.05,
    show_default=True,
    help="Significance level of the regression test (used where the set is large enough).",
)
@click.option(
    "--max-failed-items",
    type=int,
    default=0,
    show_default=True,
    help="Item runs that may fail (the task: error or timeout; an evaluator: an error score) "
    "before the run fails.",
)
@click.option(
    "--repetitions",
    type=click.IntRange(min=1),
    default=None,
    help="Run every item this many times (overrides what the file asks for).",
)
@click.option("--url", default=None, help=_URL_HELP)
def run_file(
    file: Path,
    fail_under: tuple[str, ...],
    baseline: str | None,
    max_drop: tuple[str, ...],
    alpha: float,
    max_failed_items: int,
    repetitions: int | None,
    url: str | None,
) -> None:
    """Run the experiment(s) FILE defines (a Python script calling `evaluate`) and gate on them.

    Arguments are checked before any item runs. The verdict is stored with the run; a run
    that failed never becomes a baseline. Exit codes: 0 passed; 1 a threshold was missed,
    the run dropped from the baseline, or items failed; 2 the file, the arguments or the
    collector could not be used.
    """
    from assay.evaluators.comparison import compare
    from assay.evaluators.experiment import watch_results
    from assay.evaluators.gate import Gate, GateError, MaxDrop, Threshold

    try:
        gate = Gate(
            thresholds=[Threshold.parse(text) for text in fail_under],
            max_drops=[MaxDrop.parse(text) for text in max_drop],
            alpha=alpha,
            max_failed_items=max_failed_items,
            baseline=baseline,
        )
    except ValueError as exc:
        _fail(str(exc))
    if url:
        os.environ["ASSAY_URL"] = url  # the script's evaluate() records there too
    client = CollectorClient(url)
    try:
        client.health()
    except CollectorError as exc:
        _fail(str(exc))
    baselines: dict[str, ExperimentResult | None] = {}

    def before(run: ExperimentResult) -> None:
        # Runs before the first item: a wrong argument costs nothing.
        if repetitions is not None:
            run.repetitions = repetitions
        gate.check_arguments(run)
        if baseline:
            baselines[run.experiment_id] = _find_baseline(client, baseline, run)
        run.verdict = "pending"  # not a baseline until judged

    results: list[ExperimentResult] = []
    sys.path.insert(0, str(file.resolve().parent))
    try:
        with watch_results(results.append, before=before):
            runpy.run_path(str(file), run_name="__main__")
    except GateError as exc:
        _fail(f"{exc} (no item ran)")
    except CollectorError as exc:
        _fail(str(exc))
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
    out = stdout_console()
    failed = False
    for result in results:
        out.print(result)
        base = baselines.get(result.experiment_id)
        if base is not None:
            out.print(compare(base, result, alpha=alpha))
        verdict = gate.judge(result, base)
        if base is not None and base.verdict == "failed":  # only by its id: names skip those
            verdict.notes.append(
                f"the baseline {baseline} failed its own gate: it is held up as the bar because "
                "its id was given"
            )
        if baseline and base is None:
            verdict.notes.append(
                f"no earlier run of {baseline} passed a gate: nothing to compare with; "
                "if this run passes, it is the next run's baseline"
            )
        for note in verdict.notes:
            line = Text.assemble(("note:", "dim"), " ", plain(f"{result.name}: {note}"))
            err.print(line, soft_wrap=True)
        for reason in verdict.reasons:
            line = Text.assemble(("FAIL", "red"), " ", plain(f"{result.name}: {reason}"))
            err.print(line, soft_wrap=True)
        result.verdict, result.gate = verdict.verdict, verdict.to_dict()
        if result.url:
            try:
                client.record_experiment(result.record())
            except CollectorError as exc:
                _fail(f"the verdict could not be stored: {exc}")
        failed = failed or not verdict.passed
    if failed:
        sys.exit(EXIT_GATE_FAILED)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%H:%M:%S")
    err.print(f"[green]PASS[/green] {len(results)} experiment(s) at {stamp} UTC")
    sys.exit(EXIT_PASSED)
