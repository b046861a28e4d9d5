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
point at). A segment replayed at a start is not looked up: the rows it would find may be its
own, stored by a run killed before every view below the table had its part; only its insert
again, with its token, completes those views. (So a copy that arrives in a segment the next
run replays is counted twice by the rollups: a crash and a resend at once.)
"""

from __future__ import annotations

from typing import ClassVar, Protocol, TypeVar

from assay.collector.store.base import Store


class _Span(Protocol):
    trace_id: str
    span_id: str


class _CallOrTool(_Span, Protocol):
    table: ClassVar[str]
    timestamp: int


Span = TypeVar("Span", bound=_Span)
Row = TypeVar("Row", bound=_CallOrTool)


def first_copies(rows: list[Span]) -> list[Span]:
    """`rows` without the later copies of a span (same trace and span id)."""
    if len(rows) < 2:
        return rows
    seen: set[tuple[str, str]] = set()
    kept = []
    for row in rows:
        key = (row.trace_id, row.span_id)
        if key not in seen:
            seen.add(key)
            kept.append(row)
    return kept if len(kept) < len(rows) else rows


def not_stored(store: Store, rows: list[Row]) -> list[Row]:
    """`rows` (of `llm_calls` or `tool_calls`) without those whose span the table holds."""
    if not rows:
        return rows
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
    if not found:
        return rows
    stored = {(str(trace_id), str(span_id)) for trace_id, span_id in found}
    return [row for row in rows if (row.trace_id, row.span_id) not in stored]
