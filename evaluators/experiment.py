"""Running an experiment: a task over every dataset item, scored by evaluators, recorded.

::

    def task(question: str) -> str:
        return client.chat.completions.create(...).choices[0].message.content

    result = evaluate(dataset, task, [exact_match()], experiment="prompt-b", params={...})

The task is called with the item's input (a first parameter named `item` gets the whole
`DatasetItem`), plus any of `expected`, `context`, `metadata`, `params` it names. It may be
sync (each call in a thread of its own, `concurrency` at once) or async. Each item runs inside
its own trace, a root span stamped with the experiment and dataset item ids, so the task's
instrumented LLM calls nest in it and carry both ids; each item has `timeout` seconds; an
item that raises or times out is recorded as failed and the run goes on. With
`repetitions=k` every item runs k times (one trace each), pass after pass over the dataset.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import inspect
import json
import logging
import subprocess
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from assay.evaluators.base import EvalInput, Evaluator, FunctionEvaluator, Score, _error_text
from assay.evaluators.client import CollectorClient, CollectorError
from assay.evaluators.dataset import Dataset, DatasetItem
from assay.evaluators.formatting import short_of_billed
from assay.evaluators.progress import progress_display
from assay.evaluators.registry import get_evaluator, is_preset
from assay.evaluators.results import (
    STATUS_ERROR,
    STATUS_TIMEOUT,
    ExperimentResult,
    ItemResult,
    output_text,
)
from assay.instrumentation import context, force_flush
from assay.instrumentation import semconv as sc

__all__ = ["RunNotRecorded", "aevaluate", "evaluate", "watch_results"]

_log = logging.getLogger("assay.evaluators")

_TASK_KEYWORDS = frozenset({"expected", "context", "metadata", "params", "item"})
DEFAULT_CONCURRENCY = 8
DEFAULT_TIMEOUT_S = 120.0
_SEND_EVERY_ITEMS = 25
_SEND_EVERY_S = 2.0


class RunNotRecorded(CollectorError):
    """The run finished, but the collector could not keep all of it (it went away and did not
    come back by the end): the results are on `.result`, so nothing the run computed, and paid
    for, is lost."""

    def __init__(self, result: ExperimentResult, cause: CollectorError) -> None:
        super().__init__(
            f"experiment {result.name!r} ({result.experiment_id}) ran {len(result.items)} item "
            f"run(s) but could not record them all: {cause} Its results are on this "
            "exception's .result.",
            cause.status,
        )
        self.result = result


EvaluatorLike = Evaluator | str | Callable[..., Any]
Watcher = Callable[[ExperimentResult], None]

# Called with every run about to start, and with every finished run: `assay eval run` checks
# its arguments against a run before any item runs, and learns what the script evaluated.
_before: list[Watcher] = []
_watchers: list[Watcher] = []


@contextlib.contextmanager
def watch_results(callback: Watcher, *, before: Watcher | None = None) -> Iterator[None]:
    """Call `callback` with each `ExperimentResult` that finishes while the block runs, and
    `before` with each run about to start (no item has run yet; an exception it raises stops
    the run and comes out of `evaluate`)."""
    _watchers.append(callback)
    if before is not None:
        _before.append(before)
    try:
        yield
    finally:
        _watchers.remove(callback)
        if before is not None:
            _before.remove(before)


def _resolve_evaluators(evaluators: Sequence[EvaluatorLike] | EvaluatorLike) -> list[Evaluator]:
    """The evaluators a run uses, checked before any item runs: a preset factory passed
    uncalled (`exact_match`) is its default instance; a name is looked up; a plain function
    becomes a `FunctionEvaluator`; anything else is a TypeError that names it."""
    if isinstance(evaluators, Evaluator | str) or callable(evaluators):
        evaluators = [evaluators]
    resolved = [_resolve_one(entry, index) for index, entry in enumerate(evaluators)]
    names = [e.name for e in resolved]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"two evaluators share the name(s) {duplicates}; pass name=... to one")
    return resolved


_USE = (
    "pass an evaluator such as exact_match(), its name ('exact_match'), or an @evaluator function"
)


def _resolve_one(entry: Any, index: int) -> Evaluator:
    if isinstance(entry, Evaluator):
        return entry
    if isinstance(entry, str):
        return get_evaluator(entry)
    label = getattr(entry, "__qualname__", None) or repr(entry)
    if is_preset(entry):
        try:
            made = entry()
        except TypeError as exc:
            raise TypeError(
                f"evaluators[{index}]: the preset {label} needs arguments ({exc}); "
                f"call it, e.g. {label}(...)"
            ) from None
        return cast(Evaluator, made)
    if inspect.isclass(entry):
        raise TypeError(f"evaluators[{index}] is the class {label}, not an evaluator: {_USE}")
    if callable(entry):
        if _returns_evaluator(entry):
            raise TypeError(
                f"evaluators[{index}]: {label} makes evaluators; call it to get one ({_USE})"
            )
        try:
            return FunctionEvaluator(entry)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"evaluators[{index}]: {label} is not an evaluator: {exc}") from None
    raise TypeError(
        f"evaluators[{index}] is {entry!r} ({type(entry).__name__}), not an evaluator: {_USE}"
    )


def _returns_evaluator(fn: Callable[..., Any]) -> bool:
    """True when `fn` is annotated to return an Evaluator: a factory, not an evaluator."""
    try:
        annotation = inspect.signature(fn).return_annotation
    except (TypeError, ValueError):
        return False
    if isinstance(annotation, str):  # `from __future__ import annotations`
        return annotation.rsplit(".", 1)[-1] in {"Evaluator", "FunctionEvaluator", "OpenAIJudge"}
    return inspect.isclass(annotation) and issubclass(annotation, Evaluator)


class _TaskCall:
    """How to call the user's task for an item, worked out once from its signature."""

    def __init__(self, task: Callable[..., Any], params: Mapping[str, Any]) -> None:
        if not callable(task):
            raise TypeError(f"the task must be a function, not {type(task).__name__}")
        parameters = list(inspect.signature(task).parameters.values())
        positional = [
            p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        if not positional:
            raise TypeError(
                f"the task {getattr(task, '__name__', task)!r} must take the item's input as its "
                "first argument"
            )
        self.first_is_item = positional[0].name == "item"
        named = {p.name for p in parameters[1:]}
        unknown = [
            p.name
            for p in parameters[1:]
            if p.name not in _TASK_KEYWORDS
            and p.default is p.empty
            and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]
        if unknown:
            raise TypeError(
                f"the task takes {unknown}: besides the input it may take "
                f"{', '.join(sorted(_TASK_KEYWORDS))}"
            )
        self.keywords = sorted(named & _TASK_KEYWORDS)
        self.task = task
        self.params = dict(params)
        self.is_async = inspect.iscoroutinefunction(task) or inspect.iscoroutinefunction(
            getattr(task, "__call__", None)  # noqa: B004 - an object with an async __call__
        )

    def arguments(
        self, item: DatasetItem, input: Any = None
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The task's arguments for `item`, with `input` in place of the item's own (a turn of
        a replayed conversation) when given."""
        values = {
            "expected": item.expected,
            "context": item.context,
            "metadata": dict(item.metadata),
            "params": self.params,
            "item": item,
        }
        first = item if self.first_is_item else (item.input if input is None else input)
        return (first,), {name: values[name] for name in self.keywords}


REPLAY_TURNS = "turns"  # metadata["replay"] of an item replayed as a conversation


def replayed_turns(item: DatasetItem) -> list[Mapping[str, Any]] | None:
    """The questions of a conversation item (`metadata.replay == "turns"`: a promoted session),
    which an experiment asks the task one by one; None for any other item."""
    if item.metadata.get("replay") != REPLAY_TURNS or not isinstance(item.input, list):
        return None
    return [m for m in item.input if isinstance(m, Mapping) and m.get("role") == "user"]


def _eval_text(value: Any) -> Any:
    """A dataset value as an evaluator field: text and chat messages as they are, else JSON."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(m, Mapping) and "role" in m for m in value):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _eval_context(value: Any) -> list[str] | str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def git_commit() -> str:
    """The commit checked out where the experiment runs ("" outside a git work tree)."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def _span_ids(span: trace.Span) -> tuple[str, str]:
    """The item span's ids; made-up ones when tracing is off, since they tell the stored
    results of one item's repetitions apart."""
    ctx = span.get_span_context()
    if not ctx.is_valid:
        return uuid.uuid4().hex, uuid.uuid4().hex[:16]
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")


class _Run:
    def __init__(
        self,
        dataset: Dataset,
        task: _TaskCall,
        evaluators: list[Evaluator],
        result: ExperimentResult,
        *,
        concurrency: int,
        timeout: float | None,
        client: CollectorClient | None,
        progress: bool,
        repetitions: int = 1,
        emit_events: bool = False,
    ) -> None:
        self.dataset = dataset
        self.repetitions = repetitions
        self.emit_events = emit_events
        self.events: Any = None
        self.task = task
        self.evaluators = evaluators
        self.result = result
        self.concurrency = concurrency
        self.timeout = timeout
        self.client = client
        self.progress = progress_display(progress)
        self.tracer: trace.Tracer = trace.NoOpTracer()
        self.tally: Any = None
        self._unsent: list[ItemResult] = []
        self._send_failed = False
        self._last_send = time.monotonic()

    async def run(self) -> ExperimentResult:
        result = self.result
        if self.client is not None:
            client = self.client
            await asyncio.to_thread(self.dataset.push, client=client)
            from assay.evaluators.tracing import experiment_tracer

            self.tracer, self.tally = experiment_tracer(client.url)
            await asyncio.to_thread(client.record_experiment, result.record())
        if self.emit_events:
            from assay.instrumentation.evaluation_events import EvaluationEvents

            self.events = EvaluationEvents(self.client.url if self.client else None)
        limit = asyncio.Semaphore(self.concurrency)
        self.progress.start(
            f"{result.name} ({self.dataset.name})", len(self.dataset) * self.repetitions
        )
        ran_through = False
        try:
            # Pass after pass: a run stopped early has whole passes over the dataset.
            pending = [
                asyncio.ensure_future(self._item(item, repetition, limit))
                for repetition in range(self.repetitions)
                for item in self.dataset
            ]
            try:
                for finished in asyncio.as_completed(pending):
                    item_result = await finished
                    result.items.append(item_result)
                    self.progress.advance(item_result.failed)
                    await self._send(final=False)
            except BaseException:
                for future in pending:
                    future.cancel()
                result.status = "cancelled"
                raise
            result.status = "completed"
            ran_through = True
        finally:
            self.progress.stop()
            result.ended_at = time.time()
            order = {item.id: index for index, item in enumerate(self.dataset)}
            result.items.sort(key=lambda item: (order[item.item_id], item.repetition))
            _warn_of_no_answers(result)
            if self.client is not None:
                try:
                    await self._send(final=True)
                    await asyncio.to_thread(self.client.record_experiment, result.record())
                except CollectorError as exc:
                    if ran_through:
                        raise RunNotRecorded(result, exc) from exc
                    # The run is stopping for another reason: that is the error to see.
                    _log.warning("experiment %s: not all of it was recorded: %s", result.name, exc)
                await asyncio.to_thread(force_flush)
            if self.events is not None:
                await asyncio.to_thread(self._close_events)
        return result

    def _close_events(self) -> None:
        """Deliver the scores sent as events, say so if some did not arrive (the run's results
        are recorded all the same), and end the events' pipeline with its exporting thread."""
        try:
            if not self.events.flush():
                _log.warning(
                    "experiment %s: some scores sent as OpenTelemetry events did not arrive "
                    "(see OTEL_EXPORTER_OTLP_ENDPOINT); the run's own results are not affected",
                    self.result.name,
                )
        finally:
            self.events.shutdown()

    async def _send(self, final: bool) -> None:
        if self.client is None:
            return
        due = (
            len(self._unsent) >= _SEND_EVERY_ITEMS
            or time.monotonic() - self._last_send >= _SEND_EVERY_S
        )
        if self._unsent and (final or due):
            batch, self._unsent = self._unsent, []
            self._last_send = time.monotonic()
            payload = [item.to_payload() for item in batch]
            try:
                await asyncio.to_thread(
                    self.client.add_experiment_items, self.result.experiment_id, payload
                )
            except CollectorError as exc:
                # The collector is away: the items stay here, sent with a later batch (stored
                # twice, the store keeps one row), and the run goes on; the final send raises.
                self._unsent = batch + self._unsent
                if final:
                    raise
                if not self._send_failed:
                    _log.warning(
                        "experiment %s: the collector did not take its results (%s); the run "
                        "goes on and sends them later",
                        self.result.name,
                        exc,
                    )
                self._send_failed = True

    async def _item(
        self,
        item: DatasetItem,
        repetition: int,
        limit: asyncio.Semaphore,
    ) -> ItemResult:
        async with limit:
            outcome = await self._run_task(item, repetition)
            if not outcome.failed:
                outcome.scores = await self._score(item, outcome)
                if self.events is not None:
                    self._emit(outcome)
            self._unsent.append(outcome)
            return outcome

    def _emit(self, outcome: ItemResult) -> None:
        """The item's scores as `gen_ai.evaluation.result` events about its span."""
        from assay.instrumentation.evaluation_events import evaluation_result_attributes

        ids = {
            sc.EXPERIMENT_ID: self.result.experiment_id,
            sc.DATASET_ITEM_ID: outcome.item_id,
        }
        for score in outcome.scores.values():
            self.events.emit(
                outcome.trace_id,
                outcome.span_id,
                evaluation_result_attributes(
                    score.name,
                    score.value,
                    label=score.label,
                    explanation=score.explanation,
                    passed=score.passed,
                    error=score.error,
                    source=sc.ScoreSource.EXPERIMENT.value,
                    direction=score.direction,
                    evaluator_version=score.evaluator_version,
                    extra=ids,
                ),
            )

    async def _run_task(self, item: DatasetItem, repetition: int) -> ItemResult:
        experiment_id = self.result.experiment_id
        outcome = ItemResult(
            item_id=item.id, input=item.input, expected=item.expected, repetition=repetition
        )
        attributes: dict[str, str | int] = {
            sc.EXPERIMENT_ID: experiment_id,
            sc.EXPERIMENT_NAME: self.result.name,
            sc.DATASET_NAME: self.dataset.name,
            sc.DATASET_ITEM_ID: item.id,
            sc.EXPERIMENT_REPETITION: repetition,
        }
        outcome.started_at = time.time()
        started = time.perf_counter()
        with self.tracer.start_as_current_span(
            f"experiment {self.result.name}",
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            outcome.trace_id, outcome.span_id = _span_ids(span)
            with context(experiment_id=experiment_id, dataset_item_id=item.id):
                try:
                    call = self._call(item)
                    outcome.output = await (
                        asyncio.wait_for(call, self.timeout) if self.timeout else call
                    )
                except asyncio.TimeoutError:  # the builtin TimeoutError from 3.11 on
                    outcome.status = STATUS_TIMEOUT
                    outcome.error = f"TimeoutError: the task took longer than {self.timeout}s"
                except Exception as exc:  # the item fails, the run goes on
                    outcome.status = STATUS_ERROR
                    outcome.error = _error_text(exc)
                    span.record_exception(exc)
            if outcome.failed:
                span.set_status(Status(StatusCode.ERROR, outcome.error))
        outcome.duration_ms = (time.perf_counter() - started) * 1000.0
        if self.tally is not None:
            usage = self.tally.take(outcome.trace_id)
            outcome.input_tokens = usage.input_tokens
            outcome.output_tokens = usage.output_tokens
            outcome.cost_usd = usage.cost_usd
            outcome.unpriced_calls = usage.unpriced_calls
            outcome.unpriced_failed = usage.unpriced_failed
            outcome.model = usage.model
        else:  # not recorded: no spans were tallied, so nothing is known of its calls
            outcome.unpriced_calls = outcome.unpriced_failed = None
        return outcome

    async def _call(self, item: DatasetItem) -> Any:
        turns = replayed_turns(item)
        if turns is None or self.task.first_is_item:
            return await self._call_once(item, item.input)
        # A conversation: each question in turn, after the task's own earlier answers.
        conversation: list[dict[str, Any]] = []
        value: Any = None
        for question in turns:
            conversation.append(dict(question))
            value = await self._call_once(item, [dict(m) for m in conversation])
            conversation.append({"role": "assistant", "content": output_text(value)})
        return value

    async def _call_once(self, item: DatasetItem, input: Any) -> Any:
        args, kwargs = self.task.arguments(item, input)
        if self.task.is_async:
            value = await self.task.task(*args, **kwargs)
        else:
            value = await _in_own_thread(functools.partial(self.task.task, *args, **kwargs))
        if inspect.isawaitable(value):
            value = await value
        return value

    async def _score(self, item: DatasetItem, outcome: ItemResult) -> dict[str, Score]:
        data = EvalInput(
            output=output_text(outcome.output),
            input=_eval_text(item.input) or "",
            expected=_eval_text(item.expected),
            context=_eval_context(item.context),
            metadata=dict(item.metadata),
            duration_ms=outcome.duration_ms,
            cost_usd=outcome.cost_usd,
            model=outcome.model,
            cost_lower_bound=short_of_billed(outcome.unpriced_calls, outcome.unpriced_failed),
        )
        # Outside the item's trace: a judge's own LLM calls are not the task's cost.
        scores = await asyncio.gather(*(evaluator(data) for evaluator in self.evaluators))
        return {score.name: score for score in scores}


def _in_own_thread(call: Callable[[], Any]) -> Awaitable[Any]:
    """`call()` in a new daemon thread, as a future of the running loop. Not a pool: a thread
    cannot be stopped, so a call that outlives its timeout keeps its thread, and in a pool of
    `concurrency` workers the next items would wait behind it and time out without running.
    The context (the item span, the experiment ids) goes along into the thread."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()
    context_copy = contextvars.copy_context()

    def settle(value: Any, error: BaseException | None) -> None:
        if future.done():  # timed out and cancelled: nobody waits for it any more
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)

    def work() -> None:
        value: Any = None
        error: BaseException | None = None
        try:
            value = context_copy.run(call)
        except BaseException as exc:  # handed to the awaiting item, which records it
            error = exc
        with contextlib.suppress(RuntimeError):  # the run is over and its loop closed
            loop.call_soon_threadsafe(settle, value, error)

    threading.Thread(target=work, name="assay-task", daemon=True).start()
    return future


def _warn_of_no_answers(result: ExperimentResult) -> None:
    """A task that returned None (a function without `return`, a message's `content` of a
    tool call) is scored as an empty answer: say so, or the scores alone look like a bad model."""
    ran = [item for item in result.items if not item.failed]
    nothing = sum(item.output is None for item in ran)
    if nothing:
        _log.warning(
            "experiment %s: the task returned None for %d of %d items, scored as empty answers "
            "(does it return its answer?)",
            result.name,
            nothing,
            len(ran),
        )


def _prepare(
    dataset: Dataset,
    task: Callable[..., Any],
    evaluators: Sequence[EvaluatorLike] | EvaluatorLike,
    *,
    experiment: str | None = None,
    params: Mapping[str, Any] | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    timeout: float | None = DEFAULT_TIMEOUT_S,
    record: bool = True,
    url: str | None = None,
    progress: bool = True,
    repetitions: int = 1,
    emit_events: bool = False,
) -> _Run:
    if not isinstance(dataset, Dataset):
        raise TypeError(f"evaluate takes a Dataset, not {type(dataset).__name__}")
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    if isinstance(repetitions, bool) or not isinstance(repetitions, int) or repetitions < 1:
        raise ValueError(f"repetitions must be a whole number from 1, not {repetitions!r}")
    if timeout is not None and timeout <= 0:
        raise ValueError("timeout must be positive (or None for no limit)")
    resolved = _resolve_evaluators(evaluators)
    call = _TaskCall(task, params or {})
    name = experiment or f"{dataset.name}-{getattr(task, '__name__', 'task')}"
    client = None
    if record:
        client = CollectorClient(url)
        client.health()  # fail now, before any item runs, if nothing will keep the results
    result = ExperimentResult(
        experiment_id=uuid.uuid4().hex,
        name=name,
        dataset_name=dataset.name,
        dataset_version=dataset.version,
        items=[],
        evaluators={e.name: e.version for e in resolved},
        params=json.loads(json.dumps(dict(params or {}), default=str)),
        git_commit=git_commit(),
        started_at=time.time(),
        status="running",
        url=client.url if client else "",
        repetitions=repetitions,
    )
    for check in list(_before):  # may refuse the run, or set its repetitions
        check(result)
    return _Run(
        dataset,
        call,
        resolved,
        result,
        concurrency=concurrency,
        timeout=timeout,
        client=client,
        progress=progress,
        repetitions=result.repetitions,
        emit_events=emit_events,
    )


def _finished(result: ExperimentResult) -> ExperimentResult:
    for watcher in list(_watchers):
        watcher(result)
    return result


async def aevaluate(
    dataset: Dataset,
    task: Callable[..., Any] | Callable[..., Awaitable[Any]],
    evaluators: Sequence[EvaluatorLike] | EvaluatorLike,
    **options: Any,
) -> ExperimentResult:
    """`evaluate` for code already in an event loop: `result = await aevaluate(...)`; it takes
    the same keyword arguments."""
    run = _prepare(dataset, task, evaluators, **options)
    return _finished(await run.run())


def evaluate(
    dataset: Dataset,
    task: Callable[..., Any] | Callable[..., Awaitable[Any]],
    evaluators: Sequence[EvaluatorLike] | EvaluatorLike,
    *,
    experiment: str | None = None,
    params: Mapping[str, Any] | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    timeout: float | None = DEFAULT_TIMEOUT_S,
    record: bool = True,
    url: str | None = None,
    progress: bool = True,
    repetitions: int = 1,
    emit_events: bool = False,
) -> ExperimentResult:
    """Run `task` on every item of `dataset`, score the outputs, record the run; return it.

    - `experiment`: the run's name (runs of one name are versions of one experiment).
    - `params`: what defines this run (prompt version, model, temperature), stored with it.
    - `concurrency` items at once; `timeout` seconds per item (None: no limit).
    - `repetitions=k` runs every item k times: an item's score is then the mean of its k
      scores, and the summary and `compare` report the run-to-run noise.
    - `emit_events=True` also sends every score as an OpenTelemetry `gen_ai.evaluation.result`
      log record about its item's span (to `OTEL_EXPORTER_OTLP_ENDPOINT`, else the collector),
      for other tools; an Assay collector keeps them as the same rows, not twice.
    - `record=False` keeps the run local: nothing is sent, no instrumentation is turned on.
      Otherwise the collector at `url` (else `ASSAY_URL`) must answer before anything runs.

    Works inside a running event loop too (Jupyter): the run then gets a loop of its own in a
    worker thread. Use `await aevaluate(...)` instead when the task's async client belongs to
    the notebook's loop.
    """
    run = _prepare(
        dataset,
        task,
        evaluators,
        experiment=experiment,
        params=params,
        concurrency=concurrency,
        timeout=timeout,
        record=record,
        url=url,
        progress=progress,
        repetitions=repetitions,
        emit_events=emit_events,
    )
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _finished(asyncio.run(run.run()))
    caller_context = contextvars.copy_context()  # the caller's `context(...)` goes along
    with ThreadPoolExecutor(1, thread_name_prefix="assay-experiment") as worker:
        future = worker.submit(caller_context.run, asyncio.run, run.run())
        return _finished(future.result())
