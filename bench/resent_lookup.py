"""The writer's look-up of resent calls (collector/resent.py) against the size of the day's calls.

An embedded store in a temporary folder is filled with the day's calls (`INSERT ... SELECT FROM
numbers()`, spread over the hour before now) in steps; at each size a segment's worth of new
calls (default 2,500, as in an 8 MiB segment of LLM spans) is looked up five times, and the
median CPU time (this process's: chDB runs in it) and wall time are printed.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from assay.collector.resent import stored_spans
from assay.collector.settings import CollectorSettings
from assay.collector.store import open_store


@dataclass
class _Call:
    """The four columns the look-up reads."""

    timestamp: int
    trace_id: str
    span_id: str
    service_name: str
    table = "llm_calls"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="0,100000,1000000,3000000", help="calls stored")
    parser.add_argument("--calls", type=int, default=2500, help="calls looked up at once")
    args = parser.parse_args()
    now = time.time_ns()
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(CollectorSettings(storage=Path(tmp) / "data").store)
        try:
            store.migrate()
            stored = 0
            for size in (int(s) for s in args.sizes.split(",")):
                if size > stored:
                    step_ns = 3_600_000_000_000 // size
                    store.command(
                        "INSERT INTO assay.llm_calls (timestamp, trace_id, span_id, service_name, "
                        f"model) SELECT fromUnixTimestamp64Nano(toInt64({now} - 3600e9 + "
                        f"(number + {stored}) * {step_ns})), lower(hex(number + {stored} + 1)), "
                        f"lower(hex(toUInt64(number + {stored} + 1))), 'svc', 'gpt-4o' "
                        f"FROM numbers({size - stored})"
                    )
                    stored = size
                calls = [
                    _Call(now + i * 100_000, f"{2**62 + i:032x}", f"{2**62 + i:016x}", "svc")
                    for i in range(args.calls)
                ]
                times = []
                for _ in range(5):
                    cpu, wall = time.process_time(), time.perf_counter()
                    stored_spans(store, calls)  # type: ignore[type-var]
                    times.append((time.process_time() - cpu, time.perf_counter() - wall))
                cpu_ms = sorted(t[0] for t in times)[2] * 1000
                wall_ms = sorted(t[1] for t in times)[2] * 1000
                print(
                    f"{stored:>10,} calls stored: a look-up of {args.calls:,} calls "
                    f"{cpu_ms:.1f} ms CPU, {wall_ms:.1f} ms wall (median of 5)",
                    flush=True,
                )
        finally:
            store.close()


if __name__ == "__main__":
    main()
