"""What the most expensive reads a client can ask the UI and API for cost, on `--rows` calls
(embedded store, the synthetic calls of `ui_paging.py`): `GET /api/calls` at its largest page
and deepest offset (`read_max_offset`), and a calls-list page (list, totals line, filter
choices) searching a text that no call holds (it reads every prompt and response). Each read
twice, interleaved: as the collector runs it (through its read gate: the `read_*` limits, one
engine thread at the lowest priority, a page's reads sharing `read_timeout_s`) and unbounded,
as it ran before the gate. Medians of 3, in the bench's process, with its peak RSS; a read
stopped at a limit says which.

Run: `.venv/bin/python bench/hostile_reads.py [--rows 2000000]`.
"""

from __future__ import annotations

import argparse
import asyncio
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

from assay.collector.api.calls import calls_query
from assay.collector.records.calls import CallFilters, call_totals, filter_choices, list_calls
from assay.collector.records.read_gate import ReadGate
from assay.collector.settings import CollectorSettings
from assay.collector.store.base import Store
from assay.collector.store.embedded import EmbeddedStore
from assay.collector.store.reading import ReadLimitExceeded
from bench.ui_paging import fill


def timed(label: str, read: Callable[[Store], Any], store: Store, gate: ReadGate) -> None:
    """`read` through the gate (one request: its deadline shared), then unbounded, 3 times."""
    times: dict[str, list[float]] = {"gated": [], "unbounded": []}
    stopped = ""

    async def gated() -> None:
        await gate.run(read, store, deadline=time.monotonic() + gate.limits.timeout_s)

    for _ in range(3):
        for how in times:
            started = time.perf_counter()
            try:
                asyncio.run(gated()) if how == "gated" else read(store)
            except ReadLimitExceeded as exc:
                stopped = f"  (stopped: {str(exc).split(',')[0]})"
            times[how].append((time.perf_counter() - started) * 1000)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    medians = "  ".join(f"{how} {statistics.median(t):8.1f} ms" for how, t in times.items())
    print(f"  {label:<44} {medians}  peak RSS {peak:.0f} MiB{stopped}")


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
        settings = CollectorSettings()
        gate = ReadGate.from_settings(settings)
        deepest = settings.read_max_offset
        for label, params in (
            ("GET /api/calls (100 newest)", {}),
            ("GET /api/calls?limit=1000", {"limit": "1000"}),
            (
                f"GET /api/calls?limit=1000&offset={deepest:,}",
                {"limit": "1000", "offset": str(deepest)},
            ),
        ):
            sql, values, _ = calls_query(params, store.database, now, deepest)
            timed(
                label, lambda store, sql=sql, values=values: store.query(sql, values), store, gate
            )  # type: ignore[misc]
        nothing = CallFilters(text="no call holds this")

        def page(filters: CallFilters) -> Callable[[Store], None]:
            def read(store: Store) -> None:
                list_calls(store, filters)
                call_totals(store, filters)
                filter_choices(store)

            return read

        timed("calls page, no filter", page(CallFilters()), store, gate)
        timed("calls page, text no call holds", page(nothing), store, gate)
        gate.close()
        store.close()


if __name__ == "__main__":
    main()
