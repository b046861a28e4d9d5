"""What a look-up of resent plain spans would cost, were `spans_written` to leave out a plain
span a client sent again in a later request: one segment's spans looked up in `otel_traces` by
span id within the segment's time span (the query collector/resent.py's `stored_spans` makes
for calls), as CPU of the whole process (chDB runs in it) per span of the segment, and wall time.

    .venv/bin/python bench/plain_lookup.py [--stored 200000] [--segment 20000] [--rate 20000]

The table holds `--stored` plain spans of bench/ingest.py at `--rate` spans/s, the segment's
spans fall in the last second of them and are new (the usual case: nothing found). The query
alone: recording what it found beside the segment (fsync) would come on top.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest import build_plain_requests
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)

from assay.collector.normalize.traces import TraceBatch, normalize_traces
from assay.collector.schema import TraceRow, column_names, to_columns
from assay.collector.store.embedded import EmbeddedStore


def rows(total: int, start_ns: int, rate: float) -> list[TraceRow]:
    out = TraceBatch()
    for body in build_plain_requests(total, 500, seed=int(start_ns % 1000)):
        request = ExportTraceServiceRequest.FromString(body)
        normalize_traces(request, out)
    step = int(1e9 / rate)
    for n, row in enumerate(out.traces):
        row.Timestamp = start_ns + n * step
    return out.traces


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stored", type=int, default=200_000)
    parser.add_argument("--segment", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=20_000.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        store = EmbeddedStore(Path(folder), f"lookup_{uuid.uuid4().hex[:6]}")
        store.migrate()
        t0 = time.time_ns() - 3600 * 10**9
        stored = rows(args.stored, t0, args.rate)
        for at in range(0, len(stored), 20_000):
            part = stored[at : at + 20_000]
            store.insert(TraceRow.table, to_columns(part), column_names(TraceRow))
        # The segment: its spans in the last second of the stored span's time (the usual case
        # of a collector keeping up: neighbours in the window, none of them the same).
        seg_start = t0 + int((args.stored - args.rate) * 1e9 / args.rate)
        segment = rows(args.segment, seg_start, args.rate)
        for attempt in range(4):
            cpu, wall = time.process_time(), time.perf_counter()
            _, found = store.query(
                f"SELECT TraceId, SpanId FROM {store.database}.otel_traces\n"
                "WHERE Timestamp >= fromUnixTimestamp64Nano({first:Int64})\n"
                "  AND Timestamp <= fromUnixTimestamp64Nano({last:Int64})\n"
                "  AND SpanId IN splitByChar(',', {spans:String})",
                {
                    "first": min(r.Timestamp for r in segment),
                    "last": max(r.Timestamp for r in segment),
                    "spans": ",".join({r.SpanId for r in segment}),
                },
            )
            cpu = time.process_time() - cpu
            wall = time.perf_counter() - wall
            print(
                f"look-up {attempt}: {len(segment)} spans, {len(found)} found, "
                f"{cpu * 1e6 / len(segment):.2f} µs CPU a span, {wall * 1e3:.0f} ms wall"
            )


if __name__ == "__main__":
    main()
