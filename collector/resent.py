"""Spans a client sent more than once: the writer stores their calls and tool calls once.

An OTLP exporter sends a request again when it did not get the acknowledgement (a timeout, a
connection reset after the collector had spooled it): the same spans, in a new spool segment
with a new deduplication token. `otel_traces` and the summaries take the copy harmlessly
(ReplacingMergeTree, aggregates that count a span once), but `llm_calls` feeds materialized
views that sum: the rollups the dashboards read counted the call twice, for good. And inside
one segment the two copies of a call look like one call seen by two instrumentations, so
`merge_stacked_calls` folded each into the other and dropped both: the call was lost.

So before a segment's calls and tool calls are stored, the repeats inside the segment are
dropped, and so are the rows the table already holds (looked up by span id, within the
segment's time span, so a lookup reads the few granules its bloom index and partitions
point at).

A segment replayed after a crash is not looked up again when its first attempt was made: the
rows it would find may be its own, stored by a run killed before every view below the table had
its part, and only its insert again, with its token and the same rows, completes those views.
So the spans a look-up found are kept beside the segment in the spool before its first insert
(`Spool.record_resent`), and a replay leaves out those: the same rows as the first attempt, its
own kept, the copies of other segments' spans left out. A replayed segment with no such record
never had its calls inserted, and is looked up as a new one.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, ClassVar, Protocol, TypeVar

from assay.collector.store.base import Store


class _Span(Protocol):
    trace_id: str
    span_id: str


class _CallOrTool(_Span, Protocol):
    table: ClassVar[str]
    timestamp: int


T = TypeVar("T")
Span = TypeVar("Span", bound=_Span)
Row = TypeVar("Row", bound=_CallOrTool)


def span_key(row: Any) -> tuple[str, str]:
    """A row's span: its trace and span id."""
    return row.trace_id, row.span_id


def first_copies(rows: list[T], key: Callable[[T], Hashable] = span_key) -> list[T]:
    """`rows` without the later copies of a span (the same `key`: trace and span id)."""
    if len(rows) < 2:
        return rows
    seen: set[Hashable] = set()
    kept = []
    for row in rows:
        span = key(row)
        if span not in seen:
            seen.add(span)
            kept.append(row)
    return kept if len(kept) < len(rows) else rows


def stored_spans(store: Store, rows: list[Row]) -> list[tuple[str, str]]:
    """The spans (trace id, span id) of `rows` (of `llm_calls` or `tool_calls`) the table holds."""
    if not rows:
        return []
    table = rows[0].table
    _, found = store.query(
        f"SELECT trace_id, span_id FROM {store.database}.{table}\n"
        "WHERE timestamp >= fromUnixTimestamp64Nano({first:Int64})\n"
        "  AND timestamp <= fromUnixTimestamp64Nano({last:Int64})\n"
        "  AND span_id IN splitByChar(',', {spans:String})",
        {
            "first": min(row.timestamp for row in rows),
            "last": max(row.timestamp for row in rows),
            # One string, not an Array parameter: binding an array of thousands of ids costs
            # more than the look-up (span ids are hex: no comma in them).
            "spans": ",".join({row.span_id for row in rows}),
        },
    )
    return sorted({(str(trace_id), str(span_id)) for trace_id, span_id in found})


def without_spans(rows: list[Span], spans: list[tuple[str, str]]) -> list[Span]:
    """`rows` without those of `spans`."""
    if not spans:
        return rows
    left_out = set(spans)
    return [row for row in rows if (row.trace_id, row.span_id) not in left_out]
