"""The agent-run rows (`trace_spans`, `tool_calls`, and through their views `trace_summaries`)
of spans stored before migration 011 made those tables: a store an Assay of 2026-12-02 or
earlier wrote. Without them its sessions are not found (/sessions/{id} answers 404), its runs
are missing from the sessions list and the Agents dashboard, and its traces show no span kinds.

The rows are made from the stored `otel_traces` rows by the normalizer's own `agent_rows`, as
the writer makes them from a request, and linked to the spans' `llm_calls` rows. Migration 018
says whether there are any to make (its `older_spans` row); a thread makes them once the
collector serves, a batch at a time in (start, span id) order, recording how far it went, so a
start cut short (a crash, a stop) leaves the rest to the next start. A span that already has
its row (a batch written again after a crash) is left out."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from assay.collector.background import Background
from assay.collector.normalize.agents import agent_rows, link_agent_rows
from assay.collector.schema import LlmCallRow, ToolCallRow, TraceSpanRow, from_values
from assay.collector.store.base import Store

log = logging.getLogger("assay.collector.older_spans")

BATCH_SPANS = 10_000

# What linking a span to its LLM call reads of the call (`link_agent_rows`), and the columns
# an LlmCallRow cannot be made without.
_CALL_COLUMNS = (
    "timestamp",
    "trace_id",
    "span_id",
    "parent_span_id",
    "service_name",
    "operation",
    "provider",
    "request_model",
    "response_model",
    "model",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "user_id",
    "session_id",
    "prompt_name",
    "prompt_version",
)


@dataclass(frozen=True)
class Progress:
    """Migration 018's row: spans up to `until` (start ns) are to be given rows, those up to
    `after` (start ns, span id) have them."""

    until: int
    after: tuple[int, str]

    @property
    def done(self) -> bool:
        return self.after[0] > self.until


def progress(store: Store) -> Progress | None:
    """What is left to do; None when nothing is."""
    _, rows = store.query(
        "SELECT argMax(until_ns, updated_at), argMax(after_ns, updated_at),"
        f" argMax(after_span, updated_at) FROM {store.database}.older_spans HAVING count() > 0"
    )
    if not rows:
        return None
    until, after_ns, after_span = rows[0]
    found = Progress(int(until), (int(after_ns), str(after_span)))
    return None if found.done else found


def _record(store: Store, until: int, after: tuple[int, str]) -> None:
    store.query(
        f"INSERT INTO {store.database}.older_spans (until_ns, after_ns, after_span)"
        " VALUES ({until:Int64}, {after_ns:Int64}, {after_span:String})",
        {"until": until, "after_ns": after[0], "after_span": after[1]},
    )


def backfill_batch(store: Store, left: Progress, limit: int = BATCH_SPANS) -> Progress:
    """Write the rows of the next `limit` spans (by start time and span id) left, those that
    have none, and record how far that went."""
    cutoff, after = left.until, left.after
    db = store.database
    _, spans = store.query(
        "SELECT toUnixTimestamp64Nano(Timestamp) AS start_ns, TraceId, SpanId, ParentSpanId,"
        " Duration, toString(ServiceName), SpanName, SpanAttributes, StatusCode, StatusMessage"
        f" FROM {db}.otel_traces"
        " WHERE start_ns <= {cutoff:Int64}"
        # Whole days before `after` are not read (the table's partitions are days).
        " AND Timestamp >= fromUnixTimestamp64Nano({after_ns:Int64})"
        " AND (start_ns, SpanId) > ({after_ns:Int64}, {after_span:String})"
        " ORDER BY start_ns, SpanId LIMIT {limit:UInt32}",
        {"cutoff": cutoff, "after_ns": after[0], "after_span": after[1], "limit": limit},
    )
    if not spans:
        _record(store, cutoff, (cutoff + 1, ""))
        return Progress(cutoff, (cutoff + 1, ""))
    last = (int(spans[-1][0]), str(spans[-1][2]))
    keys = {"first_ns": int(spans[0][0]), "last_ns": last[0]}
    window = " BETWEEN fromUnixTimestamp64Nano({first_ns:Int64})"
    window += " AND fromUnixTimestamp64Nano({last_ns:Int64})"
    _, present = store.query(
        f"SELECT trace_id, span_id FROM {db}.trace_spans WHERE start{window}", keys
    )
    have = set(present)
    rows: list[TraceSpanRow] = []
    tools: list[ToolCallRow] = []
    for start, trace, span, parent, duration, service, name, attrs, code, message in spans:
        if (trace, span) in have:
            continue
        have.add((trace, span))  # a span stored twice gets its rows once
        span_row, tool_row = agent_rows(
            attrs,
            trace_id=trace,
            span_id=span,
            parent_span_id=parent,
            start_ns=int(start),
            end_ns=int(start) + int(duration),
            service_name=service,
            span_name=name,
            is_error=code == "Error",
            status_message=message,
        )
        rows.append(span_row)
        if tool_row is not None:
            tools.append(tool_row)
    if rows:
        columns = ", ".join(
            f"toUnixTimestamp64Nano({c})" if c == "timestamp" else c for c in _CALL_COLUMNS
        )
        _, found = store.query(
            f"SELECT {columns} FROM {db}.llm_calls WHERE timestamp{window}"
            " AND span_id IN {spans:Array(String)}",
            {**keys, "spans": [row.span_id for row in rows]},
        )
        calls = [from_values(LlmCallRow, list(_CALL_COLUMNS), list(call)) for call in found]
        link_agent_rows(rows, tools, calls)
        # The same spans give the same token: a batch whose insert was cut short and is
        # written again (a later start) is not stored twice.
        token = f"older-spans:{rows[0].trace_id}:{rows[0].span_id}:{len(rows)}"
        store.insert_rows(rows, dedup_token=f"{token}:spans")
        if tools:
            store.insert_rows(tools, dedup_token=f"{token}:tools")
    _record(store, cutoff, last)
    return Progress(cutoff, last)


@dataclass
class OlderSpans:
    """The thread that writes the rows of the spans stored before migration 011."""

    store: Store
    # True while the spool replays what an earlier run left: those spans' rows are the
    # writer's, and a batch read between its insert into otel_traces and into trace_spans would
    # write them a second time (trace_summaries would count them twice).
    replaying: Callable[[], bool] = lambda: False
    written: int = 0  # batches

    def __post_init__(self) -> None:
        self.background = Background("assay-older-spans", self._run)

    def start(self) -> None:
        self.background.start()

    def stop(self, timeout: float = 10.0) -> None:
        self.background.stop(timeout)

    def _run(self) -> None:
        try:
            self.run()
        except Exception as exc:  # the store down: the next start goes on where this one stopped
            log.warning("writing the agent rows of spans stored before migration 011: %s", exc)

    def run(self) -> None:
        left = progress(self.store)
        if left is None:
            return
        while self.replaying():
            if self.background.stopping.wait(0.5):
                return
        log.info("writing the agent rows (trace_spans) of spans stored before migration 011")
        began = time.monotonic()
        while not left.done and not self.background.stopping.is_set():
            left = backfill_batch(self.store, left)
            self.written += 1
        if left.done:
            log.info(
                "agent rows of spans stored before migration 011 written in %.1f s",
                time.monotonic() - began,
            )
