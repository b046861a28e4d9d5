"""Run- and session-level online evaluation: rules with `level: trace | session` judge whole
agent runs and conversations once they are complete, and judge them again when they change.

A run (a trace) is complete when its root span has arrived and the store has received no span
of it for `run_quiet_period` seconds (`trace_summary.updated_at`, the store's clock); a
conversation (a session) when none of its runs has received a span for `session_inactivity`
seconds. A thread looks for runs and sessions that became complete since it last looked, builds
each one's input (its steps from `trace_spans` and `tool_calls`, its goal and answer from
`llm_calls`: `assay.evaluators.trajectory.run_input`) and writes the scores with the trace (and
session) they judge. A score's `timestamp` is the `updated_at` of the state it judged: a late
span makes the run complete again later, it is judged again, and the newer score replaces the
older (same replacing key, later version), so a run has one score per evaluator, not one per
evaluation. The search walks complete runs in the order (`updated_at`, key) and remembers
the last one it judged: one insert gives every run it touches the same `updated_at`, so an
instant can hold any number of runs, and each look goes on from the key after the last. After a
restart the search starts from the newest run-level score (or `run_lookback` back), so what went
quiet meanwhile is judged and nothing is judged twice. The search never moves past the start of
an insert of spans still running (`Store.visible_until_ms`): the store stamps `updated_at` while
the insert runs, but its rows can be read only once it ends.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from assay.collector.background import Background
from assay.collector.evaluation.config import RUN_FILTER_FIELDS, EvaluationConfig
from assay.collector.evaluation.rules import CompiledRules, sampled
from assay.collector.normalize import span_kinds as kinds
from assay.collector.schema import ScoreRow, ScoreSource, TraceSpanRow
from assay.collector.stage_timing import stage
from assay.collector.store.base import Store, StoreError
from assay.evaluators import EvalInput, Evaluator, Score
from assay.evaluators.trajectory import Step, run_input

log = logging.getLogger("assay.collector.evaluation")

# What a run's steps are made of: every span that means something to an agent, not HTTP.
_STEP_KINDS = tuple(kind for kind in kinds.KINDS if kind != kinds.SPAN)
_BATCH = 200  # runs or sessions read per query; a look reads on while a query fills a batch
_MAX_BATCHES = 50  # per look: a backlog is caught up over several looks, the thread stays live


@dataclass(frozen=True, slots=True)
class Completed:
    """A run or a conversation that became complete: what the rules filter on, and the state
    it was in (`updated_ns`, the version of its scores)."""

    level: str  # trace | session
    key: str  # the trace id, or the session id
    updated_ns: int
    trace_ids: tuple[str, ...]
    summary: dict[str, Any]
    # When its spans started, earliest and latest (Unix ns): the range its rows are read in.
    first_ns: int
    last_ns: int


@dataclass
class RunEvaluationStats:
    runs: int = 0
    sessions: int = 0
    evaluated: int = 0
    failed: int = 0
    scores_written: int = 0
    write_failures: int = 0


@dataclass
class RunEvaluation:
    config: EvaluationConfig
    store: Store
    rules: CompiledRules
    stats: RunEvaluationStats = field(default_factory=RunEvaluationStats)

    def __post_init__(self) -> None:
        self._by_level = {
            level: [(i, rule, evs) for i, rule, evs in self.rules if rule.level == level]
            for level in ("trace", "session")
        }
        # Where each level's search got to: the last run (or session) looked at, as its
        # `updated_at` and key; a later look starts after it in that order.
        self._since: dict[str, tuple[int, str]] = {}
        self._background = Background("assay-run-evaluation", self._run)
        self._stopping = self._background.stopping

    @property
    def enabled(self) -> bool:
        return any(self._by_level.values())

    def start(self) -> None:
        if self.enabled:
            self._background.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._background.stop(timeout)

    def _run(self) -> None:
        asyncio.run(self._work())

    async def _work(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.look()
            except Exception:  # the store down, a bug: the next look starts where this one did
                log.exception("run-level evaluation failed; trying again")
            await asyncio.to_thread(self._stopping.wait, self.config.run_poll_interval)

    # --- one look ---------------------------------------------------------------------------
    async def look(self) -> int:
        """Judge what became complete since the last look; returns how many runs and sessions
        were judged. The search moves on only past what was judged and stored."""
        judged = 0
        for level, rules in self._by_level.items():
            for _ in range(_MAX_BATCHES if rules else 0):
                found = self._completed(level)
                scores: list[ScoreRow] = []
                for item in found:
                    rows = await self._judge(item, rules)
                    if rows:  # else no rule's filter or sample took it
                        scores.extend(rows)
                        judged += 1
                        self.stats.runs += level == "trace"
                        self.stats.sessions += level == "session"
                # One insert for the batch's scores: each insert into `scores` costs a look-up
                # of the scored calls in `llm_calls` (its view call_scores_mv), which grows with
                # the store.
                self._write(scores)
                if found:
                    self._since[level] = (found[-1].updated_ns, found[-1].key)
                if len(found) < _BATCH or self._stopping.is_set():
                    break
        return judged

    def _start(self, level: str) -> tuple[int, str]:
        """Where the search starts: after the last run judged before a restart (the newest
        run-level score's state, and the greatest key judged at that instant); else
        `run_lookback` ago."""
        if level not in self._since:
            _, rows = self.store.query(
                "SELECT toUnixTimestamp64Nano(timestamp) AS at, "
                "max(if(level = 'session', session_id, trace_id)) "
                f"FROM {self.store.database}.scores "
                f"WHERE source = '{ScoreSource.ONLINE}' AND level = {{level:String}} "
                "GROUP BY timestamp ORDER BY timestamp DESC LIMIT 1",
                {"level": level},
            )
            lookback = time.time_ns() - int(self.config.run_lookback * 1e9)
            lookback -= lookback % 1_000_000  # updated_at has milliseconds
            if rows and int(rows[0][0]) >= lookback:
                self._since[level] = (int(rows[0][0]), str(rows[0][1]))
            else:
                self._since[level] = (lookback, "")
        return self._since[level]

    def _completed(self, level: str) -> list[Completed]:
        """The next complete runs (or sessions) after the cursor, in (`updated_at`, key) order."""
        since_ns, after = self._start(level)
        db = self.store.database
        since = {"since": since_ns // 1_000_000, "after": after}
        columns = ", ".join(
            f"any({c}) AS {c}" if level == "session" else c for c in set(RUN_FILTER_FIELDS.values())
        )
        if level == "trace":
            sql = (
                f"SELECT trace_id, toUnixTimestamp64Nano(updated_at) AS updated, [trace_id], "
                "toUnixTimestamp64Nano(start), toUnixTimestamp64Nano(end), "
                f"{columns}, duration_ms, cost_usd, session_id FROM {db}.trace_summary "
                f"WHERE trace_id IN (SELECT trace_id FROM {db}.trace_summaries "
                "WHERE updated_at >= fromUnixTimestamp64Milli({since:Int64}) "
                "AND updated_at <= fromUnixTimestamp64Milli({until:Int64})) "
                "AND has_root AND updated_at <= fromUnixTimestamp64Milli({until:Int64}) "
                "AND (updated_at > fromUnixTimestamp64Milli({since:Int64}) "
                "OR trace_id > {after:String}) "
                f"ORDER BY updated_at, trace_id LIMIT {_BATCH}"
            )
            wait = self.config.run_quiet_period
        else:
            sql = (
                "SELECT session_id, toUnixTimestamp64Nano(max(updated_at)) AS updated, "
                "arrayMap(x -> x.2, arraySort(groupArray((start, trace_id)))), "
                "toUnixTimestamp64Nano(min(start)), toUnixTimestamp64Nano(max(end)), "
                f"{columns}, "
                "(toUnixTimestamp64Nano(max(end)) - toUnixTimestamp64Nano(min(start))) / 1e6, "
                f"sum(cost_usd), session_id FROM {db}.trace_summary "
                f"WHERE trace_id IN (SELECT trace_id FROM {db}.trace_summaries WHERE session_id IN "
                f"(SELECT session_id FROM {db}.trace_summaries WHERE session_id != '' "
                "AND updated_at >= fromUnixTimestamp64Milli({since:Int64}) "
                "AND updated_at <= fromUnixTimestamp64Milli({until:Int64}))) "
                "GROUP BY session_id "
                "HAVING max(updated_at) <= fromUnixTimestamp64Milli({until:Int64}) "
                "AND (max(updated_at) > fromUnixTimestamp64Milli({since:Int64}) "
                "OR session_id > {after:String}) "
                f"ORDER BY updated, session_id LIMIT {_BATCH}"
            )
            wait = self.config.session_inactivity
        # Quiet since `wait`, on the store's clock, and before every insert of spans still running.
        # A run (a session) quiet by then has its newest partial row in [since, until]: the
        # candidates are picked there, not among every run with a span since the cursor, which
        # the runs still active would make a set read again at every look (every day's parts
        # are searched for its ids: a cost that grows with the store).
        until = self.store.visible_until_ms(TraceSpanRow.table) - int(wait * 1000)
        with stage(f"run evaluation: search ({level})"):
            names, rows = self.store.query(sql, {**since, "until": until})
        found = []
        for row in rows:
            values = dict(zip(names, row, strict=True))
            summary = {field: values[field] for field in set(RUN_FILTER_FIELDS.values())}
            summary.update(duration_ms=row[-3], cost_usd=row[-2], session_id=row[-1] or "")
            found.append(
                Completed(level, str(row[0]), int(row[1]), tuple(row[2]), summary, row[3], row[4])
            )
        return found

    # --- judging ----------------------------------------------------------------------------
    async def _judge(
        self, item: Completed, rules: list[tuple[int, Any, list[Evaluator]]]
    ) -> list[ScoreRow]:
        evaluators = [
            evaluator
            for index, rule, evs in rules
            if _matches(rule.where, item.summary) and sampled(item.key, rule.sample, index)
            for evaluator in evs
        ]
        if not evaluators:
            return []
        data = self._input(item)
        scores = await asyncio.gather(*(self._score(evaluator, data) for evaluator in evaluators))
        trace_id = item.key if item.level == "trace" else ""
        return [
            ScoreRow.from_score(
                score,
                timestamp=item.updated_ns,
                trace_id=trace_id,
                span_id="",
                source=ScoreSource.ONLINE,
                level=item.level,
                session_id=str(item.summary.get("session_id") or ""),
            )
            for score in scores
        ]

    async def _score(self, evaluator: Evaluator, data: EvalInput) -> Score:
        try:
            score = await evaluator(data)
            self.stats.evaluated += 1
            self.stats.failed += bool(score.error)
        except Exception as exc:
            self.stats.failed += 1
            log.exception("evaluator %s crashed", evaluator.name)
            score = Score.failure(exc, name=evaluator.name, evaluator_version=evaluator.version)
        return score

    def _input(self, item: Completed) -> EvalInput:
        """The run's (or the conversation's) steps, goal and answer, read from the store."""
        with stage(f"run evaluation: read ({item.level})"):
            return self._read_input(item)

    def _read_input(self, item: Completed) -> EvalInput:
        db = self.store.database
        # Every row of the run is of a span that started in its time range: the range narrows
        # each read to its days and times (the trace ids alone are looked up in every part).
        ids = {"ids": list(item.trace_ids), "first": item.first_ns, "last": item.last_ns}
        started = (
            " BETWEEN fromUnixTimestamp64Nano({first:Int64}) "
            "AND fromUnixTimestamp64Nano({last:Int64})"
        )
        names, rows = self.store.query(
            "SELECT s.trace_id, s.span_id, s.kind, s.span_name, s.tool_name, s.status, "
            "toUnixTimestamp64Nano(s.start) AS start_ns, "
            "(toUnixTimestamp64Nano(s.end) - toUnixTimestamp64Nano(s.start)) / 1e6 AS ms, "
            "t.arguments, t.result, t.error_message "
            f"FROM {db}.trace_spans AS s FINAL LEFT JOIN (SELECT span_id, any(arguments) AS "
            f"arguments, any(result) AS result, any(error_message) AS error_message "
            f"FROM {db}.tool_calls WHERE trace_id IN {{ids:Array(String)}} "
            f"AND timestamp{started} GROUP BY span_id) AS t ON t.span_id = s.span_id "
            "WHERE s.trace_id IN {ids:Array(String)} AND s.kind IN {kinds:Array(String)} "
            f"AND s.start{started} ORDER BY start_ns, s.span_id",
            {**ids, "kinds": list(_STEP_KINDS)},
        )
        first = int(rows[0][6]) if rows else 0
        steps = [
            Step(
                kind=kind,
                name=tool or name,
                status=status,
                trace_id=trace,
                span_id=span,
                start_ms=(start - first) / 1e6,
                duration_ms=float(ms),
                arguments=arguments or "",
                result=result or "",
                error=error or "",
            )
            for trace, span, kind, name, tool, status, start, ms, arguments, result, error in rows
        ]
        names, calls = self.store.query(
            "SELECT trace_id, input_messages, output_messages, system_instructions "
            f"FROM {db}.llm_calls FINAL WHERE trace_id IN {{ids:Array(String)}} "
            f"AND timestamp{started} ORDER BY timestamp",
            ids,
        )
        turns: dict[str, list[EvalInput]] = {}
        for call in calls:
            turns.setdefault(call[0], []).append(
                EvalInput.from_llm_call(dict(zip(names, call, strict=True)))
            )
        ordered = [turns[t] for t in item.trace_ids if t in turns]
        if item.level == "trace":
            goal: Any = ordered[0][0].input if ordered else ""
        else:  # the conversation: each run's question and answer, in order
            goal = [
                message
                for run in ordered
                for message in (
                    {"role": "user", "content": run[0].question},
                    {"role": "assistant", "content": run[-1].output},
                )
            ][:-1]
        cost = item.summary.get("cost_usd")
        return run_input(
            steps,
            input=goal,
            output=ordered[-1][-1].output if ordered else "",
            duration_ms=float(item.summary.get("duration_ms") or 0.0),
            cost_usd=float(cost) if cost is not None else None,
            metadata={"level": item.level, "key": item.key},
        )

    def _write(self, rows: list[ScoreRow]) -> None:
        if not rows:
            return
        try:
            self.store.insert_rows(rows, dedup_token=f"run-scores-{uuid.uuid4().hex}")
            self.stats.scores_written += len(rows)
        except StoreError as exc:  # the look after the next finds them again: not lost
            self.stats.write_failures += 1
            log.warning("writing %d run-level scores failed: %s", len(rows), exc)
            raise


def _matches(where: dict[str, str | list[str]], summary: dict[str, Any]) -> bool:
    for key, wanted in where.items():
        values = [wanted] if isinstance(wanted, str) else wanted
        if summary.get(RUN_FILTER_FIELDS[key]) not in values:
            return False
    return True
