"""What one online evaluation costs, in this process: the collector's evaluation code on the bench's
calls, without ingest around it.

Two figures, for the five heuristic evaluators of bench/ingest_stages.py on every call:
- **Python**: the worker's own loop (`OnlineEvaluation._evaluate_inline`: the call's input built
  once, each evaluator run, its score gathered as a row of columns), this thread's CPU per
  evaluation, the least of five passes; and `offer` (the ingest path's part) per call.
- **all in**: the evaluation thread started at `cpu_share: 1.0` on an embedded store holding the
  calls, every evaluation scored and its score inserted (`batch_scores` a time, with the
  `call_scores_mv` view), process CPU per evaluation, every thread's.

With `--instructions`, instead: the worker's loop counted by valgrind's callgrind (which the
machine's load does not move), instructions per evaluation, and per `score_now` of each
evaluator and per call of the input built for them (`EvalInput.from_llm_call`), over `--calls`
calls (300 is enough) after a warm-up; needs valgrind and gcc (bench/callgrind.py).

Run: `.venv/bin/python bench/evaluation_cost.py [--calls 2000] [--passes 5] [--instructions]`.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import os
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from callgrind import count_script
from ingest import build_requests
from ingest_stages import RULES

from assay.collector.evaluation.config import EvaluationConfig
from assay.collector.evaluation.online import OnlineEvaluation, _call_fields
from assay.collector.evaluation.score_columns import ScoreColumns
from assay.collector.normalize.otlp import decode_protobuf
from assay.collector.normalize.traces import normalize_traces
from assay.collector.schema import LlmCallRow, column_names, to_columns
from assay.collector.settings import CollectorSettings
from assay.collector.store import open_store
from assay.evaluators import EvalInput


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


def _count_instructions(library: str, count: int) -> None:
    """Under valgrind: the worker's loop, then each part of it, between a zeroing and a dump."""
    callgrind = ctypes.CDLL(library)
    calls = bench_calls(count)
    online = OnlineEvaluation(config(queue_size=10**7), store=None)  # type: ignore[arg-type]
    online.offer(calls)
    jobs = list(online._jobs)
    online._evaluate_inline(jobs[:50], ScoreColumns())  # warm-up
    gc.disable()  # a collection would land in one part or another
    scores = ScoreColumns()
    callgrind.cg_start()
    for at in range(0, len(jobs), 512):
        online._evaluate_inline(jobs[at : at + 512], scores)
    callgrind.cg_dump(b"loop")
    callgrind.cg_start()
    inputs = [EvalInput.from_llm_call(_call_fields(c), with_input=False) for c in calls]
    callgrind.cg_dump(b"input")
    for evaluator in {job[1].name: job[1] for job in jobs}.values():
        callgrind.cg_start()
        for data in inputs:
            evaluator.score_now(data)
        callgrind.cg_dump(evaluator.name.encode())


def instructions(count: int) -> None:
    counts = count_script(__file__, ["--calls", str(count)])
    loop, built = counts.pop("loop"), counts.pop("input")
    evaluations = count * len(counts)
    print(f"instructions ({count} of the bench's calls, {len(counts)} evaluators each, callgrind)")
    print(f"  the worker's loop        {loop / evaluations:>8,.0f} per evaluation")
    print(f"  of which the input       {built / count:>8,.0f} per call (built once for all)")
    for name, total in counts.items():
        print(f"  score_now {name:<14} {total / count:>8,.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="the bench's LLM calls")
    parser.add_argument("--passes", type=int, default=5)
    parser.add_argument("--instructions", action="store_true", help="count, with callgrind")
    parser.add_argument("--child", metavar="LIB", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _count_instructions(args.child, args.calls)
        return
    if args.instructions:
        instructions(args.calls)
        return
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
