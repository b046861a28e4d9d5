"""Keyset paging and filters of the calls list, on the embedded store in this process."""

from __future__ import annotations

import os
import time
import uuid

from assay.collector.records.calls import CallFilters, Cursor, list_calls
from assay.collector.schema import LlmCallRow, ScoreRow, column_names, to_columns
from assay.collector.store.embedded import EmbeddedStore


def insert_calls(store: EmbeddedStore, service: str, count: int, start_ns: int) -> list[str]:
    """`count` calls, three per nanosecond-distinct moment but only one per microsecond group
    boundary: many share a microsecond, so ordering rests on nanoseconds and span ids."""
    rows = [
        LlmCallRow(
            timestamp=start_ns - (n // 3) * 250,  # 4 moments per microsecond, 3 calls each
            trace_id=os.urandom(16).hex(),
            span_id=os.urandom(8).hex(),
            parent_span_id="",
            service_name=service,
            operation="chat",
            provider="openai",
            request_model="m",
            response_model="m",
            model="m-even" if n % 2 == 0 else "m-odd",
        )
        for n in range(count)
    ]
    store.insert(LlmCallRow.table, to_columns(rows), column_names(LlmCallRow))
    ordered = sorted(rows, key=lambda r: (r.timestamp, r.span_id), reverse=True)
    return [r.span_id for r in ordered]


def test_paging_older_and_newer_visits_every_call_once(embedded_store: EmbeddedStore) -> None:
    service = f"paging-{uuid.uuid4().hex[:6]}"
    expected = insert_calls(embedded_store, service, 130, time.time_ns())
    filters = CallFilters(service=service)

    seen: list[str] = []
    pages = []
    cursor: Cursor | None = None
    while True:
        page = list_calls(embedded_store, filters, cursor, older=True, limit=25)
        seen += [c["span_id"] for c in page.calls]
        pages.append(page)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == expected
    assert [len(p.calls) for p in pages] == [25, 25, 25, 25, 25, 5]
    assert pages[0].prev_cursor is None and pages[1].prev_cursor is not None

    # Back from the last page towards the newest: the same pages in reverse.
    back = list_calls(embedded_store, filters, pages[-1].prev_cursor, older=False, limit=25)
    assert [c["span_id"] for c in back.calls] == [c["span_id"] for c in pages[-2].calls]
    first = list_calls(embedded_store, filters, pages[1].prev_cursor, older=False, limit=25)
    assert [c["span_id"] for c in first.calls] == expected[:25]
    assert first.prev_cursor is None  # nothing newer


def test_filters_combine(embedded_store: EmbeddedStore) -> None:
    service = f"filters-{uuid.uuid4().hex[:6]}"
    spans = insert_calls(embedded_store, service, 10, time.time_ns())
    odd = list_calls(embedded_store, CallFilters(service=service, model="m-odd"))
    assert len(odd.calls) == 5 and {c["model"] for c in odd.calls} == {"m-odd"}

    low, high, failed = spans[0], spans[1], spans[2]
    lower = "lower_is_better"
    scores = [
        ScoreRow(time.time_ns(), "", low, "relevance", 0.2, source="online"),
        ScoreRow(time.time_ns(), "", high, "relevance", 0.9, source="online"),
        # A stored score of the old `toxicity`: 0.1 of it is good, not "below 0.5".
        ScoreRow(time.time_ns(), "", high, "toxicity", 0.1, source="online", direction=lower),
        ScoreRow(time.time_ns(), "", failed, "hedging", 0.8, source="online", direction=lower),
        # A judge that failed: a failure, never a value of 0.
        ScoreRow(time.time_ns(), "", failed, "relevance", 0.0, source="online", error="Timeout"),
    ]
    embedded_store.insert(ScoreRow.table, to_columns(scores), column_names(ScoreRow))
    below = list_calls(embedded_store, CallFilters(service=service, score_below="0.5"))
    assert [c["span_id"] for c in below.calls] == [low, failed]  # the hedging 0.8 is bad
    named = CallFilters(service=service, score_below="0.5", score_name="relevance")
    assert [c["span_id"] for c in list_calls(embedded_store, named).calls] == [low]
    shown = list_calls(embedded_store, CallFilters(service=service)).calls[0]
    assert [(s["name"], s["value"]) for s in shown["scores"]] == [("relevance", 0.2)]
