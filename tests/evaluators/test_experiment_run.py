"""Running experiments locally (`record=False`): tasks, concurrency, timeouts, failures, loops."""

from __future__ import annotations

import asyncio
import io
import re
import statistics
import threading
import time
from typing import Any

import pytest
from rich.console import Console

from assay.evaluators import (
    CollectorError,
    Dataset,
    DatasetItem,
    Evaluator,
    ExperimentResult,
    Score,
    aevaluate,
    contains,
    contains_all,
    evaluate,
    evaluator,
    exact_match,
    no_pii,
)

DATASET = Dataset(
    "arith",
    [{"input": f"{i} + {i}", "expected": str(2 * i), "metadata": {"i": i}} for i in range(12)],
)


def add(question: str) -> str:
    left, _, right = question.partition(" + ")
    return str(int(left) + int(right))


def test_a_sync_task_is_scored_and_summarised() -> None:
    result = evaluate(DATASET, add, [exact_match(), contains()], record=False, progress=False)
    assert isinstance(result, ExperimentResult)
    assert [item.item_id for item in result.items] == [item.id for item in DATASET]
    summary = result.summary
    assert summary["exact_match"]["mean"] == 1.0 and summary["exact_match"].pass_rate == 1.0
    assert summary["contains"].count == 12 and summary["contains"].failures == 0
    assert summary["exact_match"].latency_p95_ms is not None
    assert result.task_summary.items == 12 and result.task_summary.failed == 0
    assert result.evaluators == {
        "exact_match": exact_match().version,
        "contains": contains().version,
    }
    assert result.status == "completed" and result.ended_at is not None


def test_an_async_task_runs_with_bounded_concurrency() -> None:
    running = 0
    peak = 0

    async def slow_add(question: str) -> str:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.02)
        running -= 1
        return add(question)

    result = evaluate(
        DATASET, slow_add, [exact_match()], concurrency=3, record=False, progress=False
    )
    assert result.summary["exact_match"].mean == 1.0
    assert peak == 3


def test_sync_tasks_run_in_as_many_threads_as_the_concurrency() -> None:
    lock = threading.Lock()
    running = 0
    peak = 0

    def slow_add(question: str) -> str:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.05)
        with lock:
            running -= 1
        return add(question)

    evaluate(DATASET, slow_add, [exact_match()], concurrency=6, record=False, progress=False)
    assert peak == 6


def test_failing_and_slow_items_are_recorded_and_the_run_goes_on() -> None:
    async def flaky(question: str) -> str:
        if question.startswith("3 "):
            raise RuntimeError("model unavailable")
        if question.startswith("5 "):
            await asyncio.sleep(5)
        return add(question)

    result = evaluate(DATASET, flaky, [exact_match()], timeout=0.3, record=False, progress=False)
    by_input = {item.input: item for item in result.items}
    assert by_input["3 + 3"].status == "error"
    assert by_input["3 + 3"].error == "RuntimeError: model unavailable"
    assert by_input["5 + 5"].status == "timeout" and "0.3s" in by_input["5 + 5"].error
    assert by_input["3 + 3"].scores == {}  # nothing to judge
    summary = result.summary["exact_match"]
    assert summary.count == 10 and summary.failures == 2 and summary.mean == 1.0
    assert result.task_summary.failed == 2 and result.task_summary.timeouts == 1
    frame = result.to_pandas()
    assert frame.loc[by_input["3 + 3"].item_id, "status"] == "error"
    assert "model unavailable" in result._repr_html_()


def test_sync_items_that_hang_past_their_timeout_do_not_time_out_the_others() -> None:
    # A thread cannot be stopped: the two hung items keep theirs. Before, they held the
    # `concurrency` workers of a pool, so the next items waited for them and were recorded
    # as timeouts without having run.
    release = threading.Event()
    started: list[str] = []

    def hangs_on_two(question: str) -> str:
        started.append(question)
        if question in ("0 + 0", "1 + 1"):
            release.wait(30)
        return add(question)

    try:
        result = evaluate(
            DATASET,
            hangs_on_two,
            [exact_match()],
            concurrency=2,
            timeout=0.3,
            record=False,
            progress=False,
        )
    finally:
        release.set()
    statuses = {item.input: item.status for item in result.items}
    assert statuses.pop("0 + 0") == statuses.pop("1 + 1") == "timeout"
    assert set(statuses.values()) == {"ok"}, statuses
    assert len(started) == 12  # every item ran
    assert result.summary["exact_match"].mean == 1.0


def test_an_evaluator_that_raises_gives_error_scores_not_a_crash() -> None:
    @evaluator(name="broken_metric")
    def broken(output: str) -> float:
        raise ValueError("bad metric")

    result = evaluate(DATASET, add, [broken, exact_match()], record=False, progress=False)
    summary = result.summary["broken_metric"]
    assert summary.count == 0 and summary.failures == 12 and summary.mean is None
    assert summary.errors == {"ValueError: bad metric": 12}
    assert result.items[0].scores["broken_metric"].error == "ValueError: bad metric"
    assert result.summary["exact_match"].mean == 1.0
    # The error text is where people look: the terminal, the notebook, the stored summary.
    line = "broken_metric failed on 12 item(s): ValueError: bad metric"
    assert line in terminal_text(result)
    assert line in result._repr_html_()
    assert result.summary_dict()["evaluators"]["broken_metric"]["errors"] == {
        "ValueError: bad metric": 12
    }


def terminal_text(renderable: Any) -> str:
    console = Console(width=200, record=True, file=io.StringIO(), color_system=None)
    console.print(renderable)
    return console.export_text()


def test_a_preset_passed_uncalled_works_as_its_default_instance() -> None:
    result = evaluate(DATASET, add, [exact_match, no_pii], record=False, progress=False)
    assert result.summary["exact_match"].mean == 1.0 and result.summary["no_pii"].mean == 1.0
    assert result.summary["exact_match"].failures == 0


@pytest.mark.parametrize(
    ("given", "named"),
    [
        (contains_all, "the preset contains_all needs arguments"),
        (42, "evaluators[0] is 42 (int), not an evaluator"),
        (Dataset, "the class Dataset"),
        (lambda a, b: 1.0, "<lambda> is not an evaluator"),
        (None, "evaluators[0] is None"),
    ],
)
def test_anything_else_is_a_type_error_naming_it_before_any_item_runs(
    given: Any, named: str
) -> None:
    ran: list[str] = []

    def task(question: str) -> str:
        ran.append(question)
        return question

    with pytest.raises(TypeError, match=re.escape(named)):
        evaluate(DATASET, task, [given], record=False, progress=False)
    assert ran == []


def test_a_factory_of_ones_own_passed_uncalled_is_refused() -> None:
    def my_judge(strict: bool = True) -> Evaluator:
        return exact_match(ignore_case=not strict)

    with pytest.raises(TypeError, match="my_judge makes evaluators; call it"):
        evaluate(DATASET, add, [my_judge], record=False, progress=False)


def test_repetitions_run_every_item_k_times_and_measure_the_noise() -> None:
    calls: dict[str, int] = {}
    lock = threading.Lock()

    def flaky(question: str) -> str:
        with lock:
            calls[question] = calls.get(question, 0) + 1
            nth = calls[question]
        answer = add(question)
        # The first two items are right only on their first run: they are unstable.
        return answer if nth == 1 or question not in ("0 + 0", "1 + 1") else "wrong"

    result = evaluate(DATASET, flaky, [exact_match()], record=False, progress=False, repetitions=3)
    assert len(result.items) == 36 and result.repetitions == 3
    assert sorted({item.repetition for item in result.items}) == [0, 1, 2]
    assert len({item.trace_id for item in result.items}) == 36  # a trace per run of an item
    values = result.values("exact_match")
    assert values[DATASET.items[0].id] == pytest.approx(1 / 3) and len(values) == 12
    summary = result.summary["exact_match"]
    assert summary.mean == pytest.approx((10 + 2 / 3) / 12)
    assert summary.unstable_items == 2 and summary.count == 36
    # The pass means are 12/12, 10/12 and 10/12 in some order: their standard deviation.
    assert summary.noise == pytest.approx(statistics.stdev([1, 10 / 12, 10 / 12]))
    with pytest.raises(ValueError, match="repetitions"):
        evaluate(DATASET, add, [exact_match()], record=False, repetitions=0)


def test_the_task_may_take_the_item_and_its_fields() -> None:
    seen: list[Any] = []

    def task(item: DatasetItem, params: dict[str, Any], expected: str) -> str:
        seen.append((item.metadata["i"], params["k"], expected))
        return expected

    evaluate(DATASET, task, [exact_match()], params={"k": 1}, record=False, progress=False)
    assert sorted(seen) == [(i, 1, str(2 * i)) for i in range(12)]
    with pytest.raises(TypeError, match="besides the input"):
        evaluate(DATASET, lambda q, temperature: q, [exact_match()], record=False)


def test_evaluators_given_by_name_or_as_plain_functions() -> None:
    def shorter_than_3(output: str) -> bool:
        return len(output) < 3

    result = evaluate(DATASET, add, ["exact_match", shorter_than_3], record=False, progress=False)
    assert set(result.summary) == {"exact_match", "shorter_than_3"}
    with pytest.raises(ValueError, match="share the name"):
        evaluate(DATASET, add, [exact_match(), exact_match()], record=False)


def test_evaluate_works_inside_a_running_event_loop() -> None:
    async def notebook_cell() -> ExperimentResult:
        # As in Jupyter: a loop is running, and the cell calls the sync API.
        return evaluate(DATASET, add, [exact_match()], record=False, progress=False)

    result = asyncio.run(notebook_cell())
    assert result.summary["exact_match"].mean == 1.0

    async def awaited() -> ExperimentResult:
        return await aevaluate(DATASET, add, [exact_match()], record=False, progress=False)

    assert asyncio.run(awaited()).summary["exact_match"].count == 12


def test_recording_without_a_collector_fails_before_running_anything() -> None:
    calls = []

    def task(question: str) -> str:
        calls.append(question)
        return question

    with pytest.raises(CollectorError, match="no collector answers"):
        evaluate(DATASET, task, [exact_match()], url="http://127.0.0.1:9", progress=False)
    assert calls == []


def test_scores_of_failed_and_judged_items_feed_the_pass_rate() -> None:
    @evaluator(name="half", threshold=0.5)
    def half(output: str) -> Score:
        return Score(value=0.75 if int(output) % 4 == 0 else 0.25)

    result = evaluate(DATASET, add, [half], record=False, progress=False)
    summary = result.summary["half"]
    assert summary.pass_rate == pytest.approx(6 / 12)
    assert summary.mean == pytest.approx((6 * 0.75 + 6 * 0.25) / 12)


def test_latency_percentiles_are_numpy_s_linear_percentiles() -> None:
    import numpy as np

    result = evaluate(DATASET, add, [exact_match()], record=False, progress=False)
    durations = [item.duration_ms for item in result.items]
    assert result.task_summary.latency_p50_ms == pytest.approx(np.percentile(durations, 50))
    assert result.task_summary.latency_p95_ms == pytest.approx(np.percentile(durations, 95))


def test_a_task_that_returns_nothing_is_said_to(caplog: pytest.LogCaptureFixture) -> None:
    def forgets_to_return(question: str) -> None:
        add(question)

    result = evaluate(DATASET, forgets_to_return, [exact_match()], record=False, progress=False)
    assert result.summary["exact_match"].mean == 0.0  # scored, as empty answers
    assert "the task returned None for 12 of 12 items" in caplog.text

    caplog.clear()
    evaluate(DATASET, add, [exact_match()], record=False, progress=False)
    assert "returned None" not in caplog.text
