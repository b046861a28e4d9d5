"""Online evaluation benchmark: heuristic evaluations per second while ingest runs.

The same OTLP traffic as bench/ingest.py goes into two collectors on embedded storage, one
after the other: without online evaluation, then with rules running heuristic presets on
every call. Prints evaluations/s (counted by the collector, scores counted in the store) and
how much ingest throughput the evaluation costs. Target: >= 2,000 evaluations/s with ingest
falling by under 20%.

Run: `.venv/bin/python bench/evaluators.py [--spans 30000] [--batch 200] [--senders 2]`.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ingest import build_requests, parse_args, report, run_ingest

from tests.conftest import RunningCollector

RULES = """\
evaluation:
  cpu_share: {cpu_share}
  rules:
    - evaluators:
        - json_valid
        - pii
        - refusal
        - length: {max_chars: 4000}
        - contains_any: {texts: [refund, invoice], ignore_case: true}
"""
EVALUATORS_PER_CALL = RULES.count("        - ")


class Evaluation:
    """Waits, after ingest, until the queue is drained; records what the collector counted."""

    def __init__(self) -> None:
        self.stats: dict[str, int] = {}
        self.seconds = 0.0
        self.scores = 0

    def __call__(self, collector: RunningCollector, started: float) -> None:
        while time.perf_counter() - started < 900:
            health = httpx.get(f"{collector.http_url}/api/health", timeout=30).json()
            stats = health["evaluation"]
            done = stats["evaluated"] + stats["dropped"]
            drained = stats["queue_depth"] == 0 and done >= stats["queued"] > 0
            if drained and stats["scores_written"] >= stats["evaluated"]:
                break
            time.sleep(0.05)
        self.seconds = time.perf_counter() - started
        self.stats = stats
        self.scores = collector.query("SELECT count() AS n FROM assay.scores")[0]["n"]


def main() -> None:
    args = parse_args(
        __doc__.splitlines()[0],
        lambda parser: parser.add_argument(
            "--cpu-share", type=float, default=0.1, help="evaluation's share of a core"
        ),
    )
    print(f"building {args.spans} spans ...", flush=True)
    bodies = build_requests(args.spans, args.batch)
    plain = run_ingest(bodies, args.spans, args.senders)
    report(f"\nIngest without online evaluation ({args.spans} LLM spans)", plain)

    evaluation = Evaluation()
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "assay.yaml"
        config.write_text(RULES.replace("{cpu_share}", str(args.cpu_share)))
        scored = run_ingest(
            bodies, args.spans, args.senders, "--config", str(config), then=evaluation
        )
    report(
        f"\nIngest with {EVALUATORS_PER_CALL} heuristic evaluators on every call "
        f"(cpu_share {args.cpu_share})",
        scored,
    )

    stats = evaluation.stats
    per_second = stats["evaluated"] / evaluation.seconds
    drop = 1 - scored.spans_per_s / plain.spans_per_s
    print(f"\nOnline evaluation ({os.cpu_count()} cores, collector and senders on one machine)")
    print(f"  evaluations           {stats['evaluated']} (scores stored {evaluation.scores})")
    print(f"  dropped / failed      {stats['dropped']} / {stats['failed']}")
    print(f"  all scored after      {evaluation.seconds:7.2f} s from the first request")
    print(f"  evaluations/s         {per_second:9.0f}")
    print(f"  ingest throughput     {scored.spans_per_s:9.0f} spans/s, {drop:.1%} below without")
    met = per_second >= 2000 and drop < 0.20
    print(f"  target                {'MET' if met else 'MISSED'} (>= 2,000 evaluations/s, < 20%)")


if __name__ == "__main__":
    main()
