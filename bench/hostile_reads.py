"""What the most expensive reads a client can ask the UI and API for cost, on `--rows` calls
(embedded store, the synthetic calls of `ui_paging.py`): `GET /api/calls` at its largest page
and deepest offset (clamped to 10^9), and a calls-list page (list, totals line, filter choices)
searching a text that no call holds (it reads every prompt and response). Medians of 3, in the
bench's process, with its peak RSS.

Run: `.venv/bin/python bench/hostile_reads.py [--rows 2000000]`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from assay.collector.api.calls import MAX_OFFSET, calls_query
from assay.collector.records.calls import CallFilters, call_totals, filter_choices, list_calls
from assay.collector.store.embedded import EmbeddedStore
from bench.ui_paging import fill


def timed(label: str, fn: Callable[[], Any]) -> None:
    times = []
    for _ in range(3):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  {label:<58} median {statistics.median(times):8.1f} ms  peak RSS {peak:.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=2_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        store = EmbeddedStore(Path(folder), "assay")
        store.migrate()
        fill(store, args.rows)
        store.query("OPTIMIZE TABLE assay.llm_calls FINAL")
        print(f"{args.rows:,} calls")
        now = dt.datetime.now(dt.timezone.utc)
        for label, params in (
            ("GET /api/calls (100 newest)", {}),
            ("GET /api/calls?limit=1000", {"limit": "1000"}),
            (
                f"GET /api/calls?limit=1000&offset={MAX_OFFSET:,}",
                {"limit": "1000", "offset": "1e9"},
            ),
            (
                "GET /api/calls?limit=1000&offset=rows-1000",
                {"limit": "1000", "offset": str(args.rows - 1000)},
            ),
        ):
            params = (
                {**params, "offset": str(MAX_OFFSET)} if params.get("offset") == "1e9" else params
            )
            sql, values, _ = calls_query(params, store.database, now)
            timed(label, lambda sql=sql, values=values: store.query(sql, values))  # type: ignore[misc]
        nothing = CallFilters(text="no call holds this")

        def page(filters: CallFilters) -> None:
            list_calls(store, filters)
            call_totals(store, filters)
            filter_choices(store)

        timed("calls page, no filter", lambda: page(CallFilters()))
        timed("calls page, text no call holds", lambda: page(nothing))
        store.close()


if __name__ == "__main__":
    main()
