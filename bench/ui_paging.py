"""UI list benchmark: keyset pages of the calls list on millions of rows (embedded store).

Fills `llm_calls` with synthetic calls spread over 30 days (ClickHouse generates them), then
times the list queries the UI runs: the first page, the totals line above it, a page deep in
the past (by cursor, the way "older" links go), filtered pages, a free-text search, and the
OFFSET query it replaces.
Run: `.venv/bin/python bench/ui_paging.py [--rows 2000000]`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from assay.collector.records.calls import (
    CallFilters,
    Cursor,
    call_totals,
    filter_choices,
    list_calls,
)
from assay.collector.store.embedded import EmbeddedStore

DAYS = 30


def fill(store: EmbeddedStore, rows: int) -> int:
    """Insert `rows` calls ending now; returns the newest call's time in ns."""
    now_ns = time.time_ns()
    span_ns = DAYS * 86_400 * 10**9
    store.query(
        f"""
        INSERT INTO {store.database}.llm_calls
            (timestamp, trace_id, span_id, service_name, operation, provider, model,
             request_model, input_messages, output_messages, input_tokens, output_tokens,
             cost_usd, duration_ms, status, user_id, session_id, prompt_name, prompt_version)
        SELECT
            fromUnixTimestamp64Nano(toInt64({now_ns} - intDiv(number * {span_ns}, {rows}))),
            lower(hex(cityHash64(number, 1))) || lower(hex(cityHash64(number, 2))),
            lower(hex(cityHash64(number, 3))),
            ['checkout', 'support-bot', 'search'][number % 3 + 1],
            'chat', 'openai',
            ['gpt-4o', 'gpt-4o-mini', 'gpt-4.1-mini', 'o4-mini', 'gpt-4.1-nano', 'local'][
                number % 6 + 1],
            'gpt-4o',
            '[{{"role":"user","parts":[{{"type":"text","content":"Where is my order #'
                || toString(number) || '? ' || repeat('please help ', 8) || '"}}]}}]',
            '[{{"role":"assistant","parts":[{{"type":"text","content":"Order '
                || toString(number) || ' ships tomorrow."}}]}}]',
            100 + number % 400, 20 + number % 200, (number % 1000) / 1e6,
            200 + number % 3000, if(number % 50 = 0, 'error', 'ok'),
            'user-' || toString(number % 5000), 'session-' || toString(number % 40000),
            ['order-assistant', 'support-answer', 'query-rewrite'][number % 3 + 1],
            ['v1', 'v2', 'v3'][number % 3 + 1]
        FROM numbers({rows})
        """
    )
    return now_ns


def timed(label: str, fn: Callable[[], Any], repeat: int = 5) -> Any:
    result = None
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - started) * 1000)
    print(f"  {label:<52} median {statistics.median(times):7.1f} ms  (min {min(times):.1f})")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=2_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        store = EmbeddedStore(Path(folder), "assay")
        store.migrate()
        started = time.perf_counter()
        now_ns = fill(store, args.rows)
        store.query("OPTIMIZE TABLE assay.llm_calls FINAL")
        print(
            f"{args.rows:,} calls over {DAYS} days inserted in {time.perf_counter() - started:.1f}s"
        )
        everything = CallFilters()
        page = timed("first page (50 newest)", lambda: list_calls(store, everything))
        assert len(page.calls) == 50
        deep = Cursor(now_ns - 20 * 86_400 * 10**9, "0")  # 20 days back: two thirds in
        timed("page 20 days back, by cursor", lambda: list_calls(store, everything, deep))
        offset = args.rows * 2 // 3
        timed(
            f"same depth by OFFSET {offset:,} (what keyset replaces)",
            lambda: store.query(
                "SELECT timestamp, span_id FROM assay.llm_calls ORDER BY timestamp DESC,"
                f" span_id DESC LIMIT 50 OFFSET {offset}"
            ),
        )
        for label, filters in (
            ("service + model", CallFilters(service="search", model="local")),
            ("status = error", CallFilters(status="error")),
            ("one user", CallFilters(user_id="user-42")),
            ("text in prompt/response ('order #1234567')", CallFilters(text="order #1234567")),
            ("ungraded (review queue)", CallFilters(feedback="no")),
        ):
            timed(f"first page, {label}", lambda f=filters: list_calls(store, f))  # type: ignore[misc]
        timed("filter drop-down values (every list page)", lambda: filter_choices(store))
        # The totals line above the list: every call the filter matches, not one page.
        timed(
            "totals (count, cost, errors, p95), no filter", lambda: call_totals(store, everything)
        )
        timed(
            "totals, service + model",
            lambda: call_totals(store, CallFilters(service="search", model="local")),
        )
        store.close()


if __name__ == "__main__":
    main()
