"""What keeping a segment's look-up beside it costs: `DiskSpool.record_resent` (fsync always).

Before a segment's first insert the writer keeps the spans its look-up of resent calls found
(collector/resent.py) in a file beside the segment, so that a replay after a crash leaves out
the same calls. Each round seals a one-record segment, records a look-up (half of them finding
nothing, half ten spans), and releases it; the median and 90th percentile of the wall time and
the median of this thread's CPU time are printed.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from assay.collector.spool import DiskSpool, ResentSpans


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--folder", help="where the spool goes (default: a temporary folder)")
    args = parser.parse_args()
    walls, cpus = [], []
    with tempfile.TemporaryDirectory(dir=args.folder) as tmp:
        spool = DiskSpool(Path(tmp), max_bytes=10**9, max_age=60)
        for i in range(args.rounds):
            spool.append("traces", b"x" * 100)
            spool.seal()
            segment = spool.next_segment(timeout=1, after=i)
            assert segment is not None
            found: ResentSpans = {"llm_calls": [], "tool_calls": []}
            if i % 2:
                found["llm_calls"] = [(f"{n:032x}", f"{n:016x}") for n in range(10)]
            wall, cpu = time.perf_counter(), time.thread_time()
            spool.record_resent(segment, found)
            walls.append(time.perf_counter() - wall)
            cpus.append(time.thread_time() - cpu)
            spool.release(segment)
        spool.close()
    median_ms, p90_ms = statistics.median(walls) * 1e3, sorted(walls)[len(walls) * 9 // 10] * 1e3
    cpu_us = statistics.median(cpus) * 1e6
    print(
        f"record_resent, {args.rounds} segments: wall median {median_ms:.2f} ms, 90th "
        f"percentile {p90_ms:.2f} ms; CPU median {cpu_us:.0f} µs"
    )


if __name__ == "__main__":
    main()
