"""What one online evaluation costs, in this process: the collector's evaluation code on the bench's
calls, without ingest around it.

Two figures, for the five heuristic evaluators of bench/ingest_stages.py on every call:
- **Python**: the worker's own loop (`OnlineEvaluation._evaluate_inline`: the call's input built
  once, each evaluator run, its score gathered as a row of columns), this thread's CPU per
  evaluation, the least of five passes; and `offer` (the ingest path's part) per call.
- **all in**: the evaluation thread started at `cpu_share: 1.0` on an embedded store holding the
  calls, every evaluation scored and its score inserted (`batch_scores` a time, with the
  `call_scores_mv` view), process CPU per evaluation, every thread's.

Run: `.venv/bin/python bench/evaluation_cost.py [--calls 2000] [--passes 5]`.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest import build_requests
from ingest_stages import RULES

from assay.collector.evaluation.config import EvaluationConfig
from assay.collector.evaluation.online import OnlineEvaluation
from assay.collector.evaluation.score_columns import ScoreColumns
from assay.collector.normalize.otlp import decode_protobuf
from assay.collector.normalize.traces import normalize_traces
from assay.collector.schema import LlmCallRow, column_names, to_columns
from assay.collector.settings import CollectorSettings
from assay.collector.store import open_store


def bench_calls(count: int) -> list[LlmCallRow]:
    calls: list[LlmCallRow] = []
    for body in build_requests(count, 200):
        batch = normalize_traces(decode_protobuf("traces", body))
        batch.link()
        calls.extend(batch.llm_calls)
    return calls


def config(**options: object) -> EvaluationConfig:
    return EvaluationConfig.model_validate({**yaml.safe_load(RULES)["evaluation"], **options})


def python_cost(calls: list[LlmCallRow], passes: int) -> tuple[float, float]:
    """(µs per evaluation of the worker's loop, µs per call of `offer`), thread CPU."""
    online = OnlineEvaluation(config(queue_size=10**7), store=None)  # type: ignore[arg-type]
    best_evaluation = best_offer = float("inf")
    for _ in range(passes):
        started = time.thread_time()
        online.offer(calls)
        best_offer = min(best_offer, (time.thread_time() - started) / len(calls))
        jobs = list(online._jobs)
        online._jobs.clear()
        scores = ScoreColumns()
        started = time.thread_time()
        for at in range(0, len(jobs), 512):
            online._evaluate_inline(jobs[at : at + 512], scores)
        scores.take()
        best_evaluation = min(best_evaluation, (time.thread_time() - started) / len(jobs))
    return best_evaluation * 1e6, best_offer * 1e6


def all_in_cost(calls: list[LlmCallRow], passes: int) -> tuple[float, int]:
    """(µs of process CPU per evaluation, evaluations): scored and stored by the worker."""
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(CollectorSettings(storage=Path(tmp) / "data").store)
        try:
            store.migrate()
            store.insert(LlmCallRow.table, to_columns(calls), column_names(LlmCallRow))
            online = OnlineEvaluation(config(cpu_share=1.0, queue_size=10**7), store)
            for _ in range(passes):
                online.offer(calls)
            total = online.stats.queued
            started = time.process_time()
            online.start()
            while online.snapshot()["scores_written"] < total:
                time.sleep(0.01)
            spent = time.process_time() - started
            online.stop()
        finally:
            store.close()
    return spent / total * 1e6, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="the bench's LLM calls")
    parser.add_argument("--passes", type=int, default=5)
    args = parser.parse_args()
    calls = bench_calls(args.calls)
    print(
        f"{len(calls)} of the bench's calls, five heuristic evaluators each; "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    evaluation, offer = python_cost(calls, args.passes)
    print(f"  Python, the worker's loop   {evaluation:6.1f} µs per evaluation (least of passes)")
    print(f"  offer (ingest path)         {offer:6.1f} µs per call")
    all_in, total = all_in_cost(calls, args.passes)
    print(f"  all in, scored and stored   {all_in:6.1f} µs per evaluation ({total} evaluations)")
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
