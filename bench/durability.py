"""Durability benchmark: ingest throughput with the disk spool (fsync before every
acknowledgement) against the in-memory spool, in one run.

Run: `.venv/bin/python bench/durability.py [--spans 50000]`. Target: the spool costs < 25%.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest import build_requests, parse_args, report, run_ingest


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    bodies = build_requests(args.spans, args.batch)
    print(
        f"{args.spans} LLM spans in {len(bodies)} requests, {args.senders} gRPC senders, "
        f"{os.cpu_count()} cores\n"
    )
    # Alternate the two, twice, so that machine noise falls on both alike.
    runs: dict[str, list[float]] = {"memory": [], "disk": []}
    for _ in range(2):
        for mode in ("memory", "disk"):
            result = run_ingest(
                bodies, args.spans, args.senders, ASSAY_SPOOL=mode, ASSAY_FSYNC="always"
            )
            report(f"spool={mode}" + (" fsync=always" if mode == "disk" else ""), result)
            runs[mode].append(result.spans_per_s)
    memory, disk = max(runs["memory"]), max(runs["disk"])
    cost = 1 - disk / memory
    print(
        f"\nbest of two: memory {memory:.0f} spans/s, disk+fsync {disk:.0f} spans/s; "
        f"the spool costs {cost:.1%} of throughput "
        f"({'MET' if cost < 0.25 else 'MISSED'}: target < 25%)"
    )


if __name__ == "__main__":
    main()
