"""Online evaluation benchmark: heuristic evaluations per second, and what they cost ingest.

The same OTLP traffic as bench/ingest.py goes into collectors on embedded storage (disk spool
with fsync, redaction with every built-in pattern, the collector's flush_interval), in
interleaved rounds: one without online evaluation, one with the five heuristic evaluators of
bench/ingest_stages.py on every call, the order swapped each round. Prints, per round and as
medians, evaluations/s (evaluations done by the collector from its first request until every
score is stored) and how much slower ingest (LLM spans/s stored) is with evaluation than without.
Target (issue #22): >= 5,000 evaluations/s with ingest at most 15% slower.

Run: `.venv/bin/python bench/evaluators.py [--rounds 3] [--spans 20000] [--batch 200]
[--senders 2] [--cpu-share X]` (without --cpu-share: the collector's default).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ingest import IngestResult, build_requests, parse_args, run_ingest
from ingest_stages import RULES

from assay.collector.redaction import BUILTIN_PATTERNS
from tests.conftest import RunningCollector

EVALUATORS_PER_CALL = RULES.count("        - ")
TARGET_RATE = 5_000  # heuristic evaluations/s
TARGET_SLOWDOWN = 0.15  # ingest at most this much slower than without evaluation


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

    @property
    def per_second(self) -> float:
        return self.stats["evaluated"] / self.seconds


@dataclass
class Round:
    plain: IngestResult
    scored: IngestResult
    evaluation: Evaluation

    @property
    def slowdown(self) -> float:
        return 1 - self.scored.spans_per_s / self.plain.spans_per_s

    @staticmethod
    def cpu_per_span(result: IngestResult) -> float:
        return result.cpu_s / result.stored * 1e6


def run_round(
    bodies: list[bytes], spans: int, senders: int, config: Path, scored_first: bool
) -> Round:
    env = {"ASSAY_FLUSH_INTERVAL": "0.5", "ASSAY_REDACT": ",".join(BUILTIN_PATTERNS)}
    evaluation = Evaluation()
    runs: dict[bool, IngestResult] = {}
    for scored in (True, False) if scored_first else (False, True):
        if scored:
            args, then = ("--config", str(config)), evaluation
        else:
            args, then = (), None
        runs[scored] = run_ingest(bodies, spans, senders, *args, then=then, **env)
    return Round(runs[False], runs[True], evaluation)


def main() -> None:
    def more(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--cpu-share",
            type=float,
            help="evaluation's share of a core (default: the collector's)",
        )
        parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")

    args = parse_args(__doc__.splitlines()[0], more)
    # 20,000 unless given: ingest.py's parser defaults to 50,000, too long for several rounds
    spans = args.spans if any(a.startswith("--spans") for a in sys.argv) else 20_000
    rules = RULES
    if args.cpu_share is not None:
        rules = rules.replace("evaluation:\n", f"evaluation:\n  cpu_share: {args.cpu_share}\n", 1)
    share = args.cpu_share if args.cpu_share is not None else "default"
    print(f"building {spans} spans ...", flush=True)
    bodies = build_requests(spans, args.batch)
    print(
        f"{args.rounds} round(s) of {spans} LLM spans, {EVALUATORS_PER_CALL} heuristic evaluators "
        f"on every call (cpu_share {share}), {os.cpu_count()} cores, collector and senders on "
        f"one machine; load average {os.getloadavg()[0]:.1f} at the start",
        flush=True,
    )
    print("spans/s: LLM spans stored per s; CPU: the collector's, every thread, µs per span")
    print(
        f"{'round':>5} {'without':>9} {'with':>9} {'slower':>7} {'CPU w/o':>8} {'CPU with':>8} "
        f"{'evals/s':>8} {'evaluated':>9} {'dropped':>8} {'failed':>7} {'scores':>7} "
        f"{'scored in':>9}"
    )
    rounds: list[Round] = []
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "assay.yaml"
        config.write_text(rules)
        for index in range(args.rounds):
            done = run_round(bodies, spans, args.senders, config, scored_first=index % 2 == 1)
            rounds.append(done)
            stats = done.evaluation.stats
            print(
                f"{index + 1:>5} {done.plain.spans_per_s:9.0f} {done.scored.spans_per_s:9.0f} "
                f"{done.slowdown:7.1%} {Round.cpu_per_span(done.plain):8.0f} "
                f"{Round.cpu_per_span(done.scored):8.0f} {done.evaluation.per_second:8.0f} "
                f"{stats['evaluated']:9} {stats['dropped']:8} {stats['failed']:7} "
                f"{done.evaluation.scores:7} {done.evaluation.seconds:8.1f}s",
                flush=True,
            )
    plain = statistics.median(r.plain.spans_per_s for r in rounds)
    scored = statistics.median(r.scored.spans_per_s for r in rounds)
    rate = statistics.median(r.evaluation.per_second for r in rounds)
    cpu_plain = statistics.median(Round.cpu_per_span(r.plain) for r in rounds)
    cpu_scored = statistics.median(Round.cpu_per_span(r.scored) for r in rounds)
    slowdown = 1 - scored / plain
    print(f"\nMedians (LLM spans/s stored; load average {os.getloadavg()[0]:.1f} at the end)")
    print(f"  ingest without evaluation  {plain:9.0f} spans/s")
    print(f"  ingest with evaluation     {scored:9.0f} spans/s, {slowdown:.1%} slower")
    print(f"  evaluations/s              {rate:9.0f}")
    print(
        f"  collector CPU per span     {cpu_plain:9.0f} µs without, {cpu_scored:.0f} µs with "
        f"(+{cpu_scored / cpu_plain - 1:.0%}: evaluation's CPU while ingest ran)"
    )
    met = rate >= TARGET_RATE and slowdown <= TARGET_SLOWDOWN
    print(
        f"  target                     {'MET' if met else 'MISSED'} "
        f"(>= {TARGET_RATE:,} evaluations/s, ingest <= {TARGET_SLOWDOWN:.0%} slower)"
    )


if __name__ == "__main__":
    main()
