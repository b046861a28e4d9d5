"""Call-level online evaluation: stored LLM calls are offered by the writer, matched against the
rules, and scored by a worker thread off the ingest path; the scores are written in batches."""

from __future__ import annotations

import asyncio
import logging
import operator
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from assay.collector.evaluation.config import EvaluationConfig
from assay.collector.evaluation.rules import CompiledRules, compile_rules, sampled
from assay.collector.evaluation.score_columns import ScoreColumns
from assay.collector.schema import LlmCallRow, column_names
from assay.collector.store.base import Store, StoreError
from assay.evaluators import EvalInput, Evaluator, Score
from assay.evaluators.base import CALL_COLUMNS_READ

log = logging.getLogger("assay.collector.evaluation")


@dataclass
class EvaluationStats:
    offered: int = 0
    queued: int = 0
    evaluated: int = 0
    failed: int = 0
    dropped: int = 0
    scores_written: int = 0
    write_failures: int = 0

    def snapshot(self, depth: int) -> dict[str, int]:
        return {**vars(self), "queue_depth": depth}


class CpuBudget:
    """Keeps the calling thread's CPU time, and what `charge` adds (the score writes' thread),
    under `share` of the wall-clock time, measured over windows of a second: `pause()` says how
    long to sleep to get back under it."""

    def __init__(self, share: float, window: float = 1.0) -> None:
        self.share = share
        self.window = window
        self._start()

    def _start(self) -> None:
        self._wall = time.monotonic()
        self._cpu = time.thread_time()
        self._charged = 0.0

    def charge(self, seconds: float) -> None:
        """Count CPU time spent for this thread's work on another thread."""
        self._charged += seconds

    def pause(self) -> float:
        elapsed = time.monotonic() - self._wall
        used = time.thread_time() - self._cpu + self._charged
        wait = max(used / self.share - elapsed, 0.0)
        if elapsed + wait >= self.window:
            self._start()
        return min(wait, self.window)


# One evaluation waiting: a call and an evaluator (a tuple: the ingest path makes one for each).
_Job: TypeAlias = tuple[LlmCallRow, Evaluator]


@dataclass
class OnlineEvaluation:
    """`rules`, when given, are `compile_rules(config)` done already (at start-up, before the
    store opened); else they are compiled here."""

    config: EvaluationConfig
    store: Store
    rules: CompiledRules | None = None
    stats: EvaluationStats = field(default_factory=EvaluationStats)

    def __post_init__(self) -> None:
        self._rules = self.rules if self.rules is not None else compile_rules(self.config)
        # A call's prompt is parsed only when an evaluator of a call-level rule reads it.
        self._with_input = any(
            evaluator.reads_input
            for _, rule, evaluators in self._rules
            if rule.level == "call"
            for evaluator in evaluators
        )
        # The call-level rules as `offer` reads them, once per call each: whether the rule
        # filters at all, its evaluators, and those of them that run without an answer.
        self._call_rules = [
            (
                index,
                rule,
                bool(rule.where or rule.tags),
                tuple(evaluators),
                tuple(e for e in evaluators if not e.reads_output),
            )
            for index, rule, evaluators in self._rules
            if rule.level == "call"
        ]
        # Full, it drops from the left as new jobs come in: the oldest pending evaluations.
        self._jobs: deque[_Job] = deque(maxlen=self.config.queue_size)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._stop_by = float("inf")  # when a stop stops waiting for the queued evaluations
        self._dropped_at_stop = 0  # the worker's own count
        self._thread = threading.Thread(target=self._run, name="assay-evaluation", daemon=True)

    @property
    def enabled(self) -> bool:
        return bool(self._call_rules)

    def start(self) -> None:
        if self.enabled:
            self._thread.start()
            log.info(
                "online evaluation: %d rule(s), evaluators %s",
                len(self._rules),
                sorted({e.name for _, _, evs in self._rules for e in evs}),
            )

    def offer(self, calls: list[LlmCallRow]) -> int:
        """Queue the evaluations the rules ask for (returns how many); never blocks, drops the
        oldest when full.

        A call without an answer (failed, or stored without content) is not given to
        evaluators that read the output: a score on nothing would count as a failure."""
        if not self._call_rules:
            return 0
        jobs: list[_Job] = []
        for call in calls:
            answered = _has_output(call)
            for index, rule, filters, evaluators, figures_only in self._call_rules:
                if filters and not rule.matches(call):
                    continue
                if rule.sample < 1.0 and not sampled(call.trace_id, rule.sample, index):
                    continue
                jobs.extend([(call, e) for e in (evaluators if answered else figures_only)])
        if not jobs:
            return 0
        with self._lock:
            overflow = max(len(self._jobs) + len(jobs) - self.config.queue_size, 0)
            self._jobs.extend(jobs)
            self.stats.offered += len(calls)
            self.stats.queued += len(jobs)
            self.stats.dropped += overflow
        if overflow:
            log.warning("evaluation queue full: dropped the %d oldest evaluation(s)", overflow)
        self._wake.set()
        return len(jobs)

    def depth(self) -> int:
        with self._lock:
            return len(self._jobs)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return self.stats.snapshot(len(self._jobs))

    def _count(self, **counts: int) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self.stats, name, getattr(self.stats, name) + value)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop once the queued evaluations are done (without keeping to the CPU share: the
        collector stops its writer first, so nothing else needs the cores), or when `timeout`
        seconds are nearly up: those still queued then are dropped, counted and logged."""
        self._stop_by = time.monotonic() + timeout * 0.8
        self._stopping.set()
        self._wake.set()
        if not self._thread.is_alive():
            return
        self._thread.join(timeout)
        if self._thread.is_alive():  # out of time, finishing a score write: the store closes
            # after this returns, and closing chDB under a running insert crashes the process
            log.warning("stopping: the evaluation worker is still writing scores; waiting for it")
            self._thread.join(timeout)

    def offer_unscored(self) -> int:
        """Offer again the calls of the last `call_lookback` seconds that have no online score,
        as they were offered when stored: the evaluations a crash lost (the queue lives in
        memory) or a stop out of time dropped. Looks at the newest `queue_size` of them; returns
        how many calls were looked at."""
        lookback = self.config.call_lookback
        if not (self._call_rules and lookback):
            return 0
        since = time.time_ns() - int(lookback * 1e9)
        db = self.store.database
        params: dict[str, Any] = {"since": since, "limit": self.config.queue_size}
        # The calls some rule takes (its sampling aside), so the newest `queue_size` are those.
        wanted = " OR ".join(f"({rule.sql_filter(params)})" for _, rule, *_ in self._call_rules)
        try:
            # The newest unscored calls' ids first (two light columns), then those calls whole:
            # a busy collector's window holds far more calls, and their content, than it reads.
            names, rows = self.store.query(
                f"SELECT {_STORED_CALL_COLUMNS} FROM {db}.llm_calls AS c FINAL"
                " WHERE c.timestamp >= fromUnixTimestamp64Nano({since:Int64})"
                f" AND c.span_id IN (SELECT span_id FROM {db}.llm_calls"
                "  WHERE timestamp >= fromUnixTimestamp64Nano({since:Int64})"
                f"  AND ({wanted})"
                f"  AND span_id NOT IN (SELECT span_id FROM {db}.scores"
                "   WHERE source = 'online' AND level = 'call'"
                # a score is written after its call started, but the clocks are two machines'
                "   AND timestamp >= fromUnixTimestamp64Nano({since:Int64}) - INTERVAL 1 HOUR)"
                "  ORDER BY timestamp DESC LIMIT {limit:UInt64})"
                " ORDER BY c.timestamp",
                params,
            )
        except StoreError as exc:
            log.warning("online evaluation: could not look for calls left unscored: %s", exc)
            return 0
        queued = self.offer([LlmCallRow(**dict(zip(names, row, strict=True))) for row in rows])
        if queued:
            log.info(
                "online evaluation: %d evaluation(s) queued again for calls of the last %g s "
                "without an online score (left by the last run)",
                queued,
                lookback,
            )
        return len(rows)

    # --- the worker thread ----------------------------------------------------------------------
    def _run(self) -> None:
        self.offer_unscored()
        asyncio.run(self._work())

    async def _work(self) -> None:
        limits: dict[str, asyncio.Semaphore] = {}
        pending = ScoreColumns()
        running: set[asyncio.Task[None]] = set()
        writing: asyncio.Task[float] | None = None  # the score write, its CPU time
        last_flush = last_log = time.monotonic()
        logged: dict[str, int] = {}
        budget = CpuBudget(self.config.cpu_share)
        while not (self._stopping.is_set() and not running and not self._left_at_stop()):
            if time.monotonic() - last_log >= self.config.log_interval:
                last_log = time.monotonic()
                logged = self._log_progress(logged)
            if self._stopping.is_set() and self._out_of_time():
                self._left_at_stop()  # nothing more is taken, what runs is cancelled
                for task in running:
                    task.cancel()
            # Stopping, small batches: the time left is looked at between them.
            batch = self._take(len(running), 16 if self._stopping.is_set() else 512)
            for _, data, job in self._evaluate_inline(batch, pending):
                name = job[1].name
                limit = limits.get(name)
                if limit is None:
                    limit = limits[name] = asyncio.Semaphore(
                        self.config.limits.get(name, self.config.concurrency)
                    )
                task = asyncio.create_task(self._limited(job, data, limit, pending))
                running.add(task)
                task.add_done_callback(running.discard)
            due = len(pending) >= self.config.batch_scores or (
                pending and time.monotonic() - last_flush >= self.config.flush_interval
            )
            if writing is not None and writing.done():
                budget.charge(writing.result())  # its CPU counts in the evaluation's share
                writing = None
            if due and writing is None:
                # One write at a time, beside the evaluations (which add to `pending`).
                writing = asyncio.create_task(asyncio.to_thread(self._write, pending.take()))
                last_flush = time.monotonic()
            if batch:
                # Let the running evaluations and the write move; stay within the CPU share.
                await asyncio.sleep(0 if self._stopping.is_set() else budget.pause())
            elif running:
                await asyncio.wait(running, timeout=0.05, return_when=asyncio.FIRST_COMPLETED)
            elif writing is not None and not writing.done():
                await asyncio.wait({writing}, timeout=self.config.flush_interval)
            else:
                await asyncio.to_thread(self._wake.wait, self.config.flush_interval)
                self._wake.clear()
        if writing is not None:
            await writing
        if pending:
            self._write(pending.take())
        if self._dropped_at_stop:
            log.warning(
                "stopping: dropped %d evaluation(s) not done in time", self._dropped_at_stop
            )
        self._log_progress(logged)

    def _out_of_time(self) -> bool:
        return time.monotonic() >= self._stop_by

    def _left_at_stop(self) -> int:
        """The evaluations still queued once a stop began: none once it is out of time, when
        they are dropped, counted and logged (and those running are cancelled, and counted)."""
        left = 0
        with self._lock:
            if self._jobs and self._out_of_time():
                left = len(self._jobs)
                self._jobs.clear()
                self.stats.dropped += left
            queued = len(self._jobs)
        self._dropped_at_stop += left
        return queued

    def _evaluate_inline(
        self, batch: list[_Job], scores: ScoreColumns
    ) -> list[tuple[LlmCallRow, EvalInput, _Job]]:
        """Run the batch's inline (cheap, synchronous) evaluations here, one after the other,
        their scores into `scores`; returns the jobs that need a task, with their input."""
        tasks = []
        call: LlmCallRow | None = None
        data = EvalInput(output="")
        evaluated = failed = 0
        for job in batch:
            # A call's jobs are queued together: its input is built once for all of them.
            if job[0] is not call:
                call = job[0]
                data = EvalInput.from_llm_call(_call_fields(call), with_input=self._with_input)
            evaluator = job[1]
            if not evaluator.runs_inline:
                tasks.append((job[0], data, job))
                continue
            try:
                score = evaluator.score_now(data)
            except Exception as exc:  # as in `_score`
                score = self._crashed(evaluator, exc)
            else:
                evaluated += 1
                failed += 1 if score.error else 0
            scores.add(call, score)
        if evaluated:
            self._count(evaluated=evaluated, failed=failed)
        return tasks

    def _take(self, running: int, most: int = 512) -> list[_Job]:
        """The next jobs; those needing a task only while fewer than max_in_flight run."""
        room = self.config.max_in_flight - running
        batch: list[_Job] = []
        with self._lock:  # jobs wait in the bounded queue, not as tasks: drops stay possible
            while self._jobs and len(batch) < most:
                if not self._jobs[0][1].runs_inline:
                    if room <= 0:
                        break
                    room -= 1
                batch.append(self._jobs.popleft())
        return batch

    def _log_progress(self, before: dict[str, int]) -> dict[str, int]:
        now = self.snapshot()
        if now != before:
            # offered counts calls, the others evaluations (a call gets one per evaluator)
            labels = {"offered": "calls offered", "queued": "evaluations queued"}
            log.info(
                "online evaluation: %s",
                ", ".join(f"{labels.get(k, k)} {v}" for k, v in now.items()),
            )
        return now

    async def _limited(
        self, job: _Job, data: EvalInput, limit: asyncio.Semaphore, out: ScoreColumns
    ) -> None:
        try:
            async with limit:
                out.add(job[0], await self._score(job[1], data))
        except asyncio.CancelledError:  # a stop out of time
            self._count(dropped=1)
            self._dropped_at_stop += 1
            raise

    async def _score(self, evaluator: Evaluator, data: EvalInput) -> Score:
        # Evaluators turn their own exceptions into error scores; a bug in that must still
        # not take the worker down.
        try:
            score = await evaluator(data)
        except Exception as exc:
            return self._crashed(evaluator, exc)
        with self._lock:
            self.stats.evaluated += 1
            self.stats.failed += 1 if score.error else 0
        return score

    def _crashed(self, evaluator: Evaluator, exc: Exception) -> Score:
        self._count(failed=1)
        log.exception("evaluator %s crashed", evaluator.name)
        return Score.failure(exc, name=evaluator.name, evaluator_version=evaluator.version)

    def _write(self, columns: list[list[Any]]) -> float:
        """Insert the scores (three attempts); returns the CPU time this thread spent on it."""
        cpu = time.thread_time()
        token = uuid.uuid4().hex
        count = len(columns[0])
        for attempt in range(3):
            try:
                # What the insert stored is not asked (a query over the store's parts, a few
                # ms of the evaluation's CPU share per insert): once one attempt succeeds, the
                # token's rows are all stored, once (a retry's are deduplicated).
                with self.store.counting({}, first_time=attempt == 0):
                    self.store.insert(
                        ScoreColumns.table,
                        columns,
                        ScoreColumns.names,
                        dedup_token=f"scores-{token}",
                    )
                self._count(scores_written=count)
                return time.thread_time() - cpu
            except StoreError as exc:
                self._count(write_failures=1)
                log.warning(
                    "writing %d online scores failed (attempt %d): %s", count, attempt + 1, exc
                )
                time.sleep(0.5 * 2**attempt)
        log.error("dropped %d online scores: the store kept failing", count)
        return time.thread_time() - cpu


def _has_output(call: LlmCallRow) -> bool:
    return call.status != "error" and call.output_messages not in ("", "[]")


# An `llm_calls` row read back as the `LlmCallRow` it was stored from (its time as written).
_STORED_CALL_COLUMNS = ", ".join(
    "toUnixTimestamp64Nano(c.timestamp) AS timestamp" if name == "timestamp" else f"c.{name}"
    for name in column_names(LlmCallRow)
)

# The columns of a call `EvalInput.from_llm_call` reads, in one getter (C) for all of them.
_READ = tuple(name for name in CALL_COLUMNS_READ if name in LlmCallRow.__slots__)
_read = operator.attrgetter(*_READ)


def _call_fields(call: LlmCallRow) -> dict[str, Any]:
    """The row as the mapping `EvalInput.from_llm_call` reads (column name → value)."""
    return dict(zip(_READ, _read(call), strict=True))
