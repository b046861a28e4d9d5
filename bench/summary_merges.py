"""What `trace_summaries` costs to write, to merge and to read, for traces of a given size.

Inserts `--parts` inserts of `--batch` `trace_spans` rows into a fresh embedded store (merges of
`trace_summaries` stopped), each trace `--spans` spans long (an agent run: an agent root, then
LLM calls with tokens and a price, tool calls, one failed tool in ten, plain spans), the runs
going on at once, so every insert holds a slice of every run (`--parts` partial rows a run);
then starts the merges and runs `OPTIMIZE TABLE trace_summaries FINAL`. Prints the process's
CPU ms of the inserts (the view's part is that less the same inserts without it:
`bench/ingest_views.py` prices that), the merge's CPU, its peak memory
(`system.merges.memory_usage` and the engine's `MemoryTracking`, sampled every 10 ms from a
second connection), the bytes of the merged part per trace, and the CPU ms of reading every
trace's `trace_summary` counts, tokens and cost. Whatever schema the checkout it runs from
migrates to is measured: run it from two checkouts' venvs to compare them.
Run: `.venv/bin/python bench/summary_merges.py [--spans 200] [--parts 8] [--batch 2000]
[--rounds 2]`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from assay.collector.schema import TraceSpanRow, insert_arguments
from assay.collector.settings import CollectorSettings
from assay.collector.store import open_store
from assay.collector.store.embedded import EmbeddedStore

MS = 1_000_000


def agent_spans(traces: int, spans: int, start_ns: int) -> list[TraceSpanRow]:
    """`traces` runs of `spans` spans each, running at once: in the order of their starts, the
    first span of every run, then the second of every run, and so on."""
    rows = []
    for index in range(spans):
        for trace in range(traces):
            trace_id = f"{trace:08x}{start_ns:024x}"
            root = f"{trace:08x}00000000"
            at = start_ns + (index * traces + trace) * MS
            kind = ("agent", "llm", "tool", "llm", "chain")[0 if index == 0 else 1 + index % 4]
            rows.append(
                TraceSpanRow(
                    trace_id=trace_id,
                    span_id=root if index == 0 else f"{trace:08x}{index:08x}",
                    parent_span_id="" if index == 0 else root,
                    start=at,
                    end=at + 50 * MS,
                    service_name="agents",
                    span_name=f"{kind} {index % 7}",
                    kind=kind,
                    status="error" if kind == "tool" and index % 10 == 2 else "ok",
                    agent_name="planner" if index == 0 else "",
                    tool_name="search" if kind == "tool" else "",
                    llm=kind == "llm",
                    input_tokens=300 + index if kind == "llm" else None,
                    output_tokens=50 + index if kind == "llm" else None,
                    cost_usd=0.001 * (index % 5) if kind == "llm" and index % 9 else None,
                    user_id=f"u-{trace % 50}",
                    session_id=f"s-{trace}",
                )
            )
    return rows


def one_round(store: EmbeddedStore, args: argparse.Namespace, round_: int) -> dict[str, float]:
    db = store.database
    store.command(f"TRUNCATE TABLE {db}.trace_spans")
    store.command(f"TRUNCATE TABLE {db}.trace_summaries")
    store.command(f"SYSTEM STOP MERGES {db}.trace_summaries")
    total = args.parts * args.batch
    rows = agent_spans(max(1, total // args.spans), args.spans, time.time_ns() - 3600 * 10**9)
    cpu = 0.0
    for part in range(args.parts):
        _, columns, names = insert_arguments(rows[part * args.batch : (part + 1) * args.batch])
        started = time.process_time()
        store.insert("trace_spans", columns, names, dedup_token=f"r{round_}-{part}")
        cpu += time.process_time() - started
    _, ((summary_rows, state_bytes),) = store.query(
        "SELECT sum(rows), sum(data_uncompressed_bytes) FROM system.parts WHERE active"
        f" AND database = '{db}' AND table = 'trace_summaries'"
    )
    peak = {"merge": 0, "engine": 0}
    done = threading.Event()

    def sample() -> None:
        with store._read_client() as client:
            while not done.is_set():
                engine, merge = client.query(
                    "SELECT (SELECT value FROM system.metrics WHERE metric = 'MemoryTracking'),"
                    " (SELECT max(memory_usage) FROM system.merges"
                    f" WHERE database = '{db}' AND table = 'trace_summaries')"
                ).result_rows[0]
                peak["engine"] = max(peak["engine"], int(engine or 0))
                peak["merge"] = max(peak["merge"], int(merge or 0))
                time.sleep(0.01)

    _, ((engine_before,),) = store.query(
        "SELECT value FROM system.metrics WHERE metric = 'MemoryTracking'"
    )
    sampler = threading.Thread(target=sample)
    sampler.start()
    store.command(f"SYSTEM START MERGES {db}.trace_summaries")
    started = time.process_time()
    store.command(f"OPTIMIZE TABLE {db}.trace_summaries FINAL")
    merge_cpu = time.process_time() - started
    done.set()
    sampler.join()
    _, ((traces, merged_bytes),) = store.query(
        "SELECT sum(rows), sum(data_uncompressed_bytes) FROM system.parts WHERE active"
        f" AND database = '{db}' AND table = 'trace_summaries'"
    )
    started = time.process_time()
    _, ((_, counted, cost),) = store.query(
        "SELECT count(), sum(spans + llm_calls + tool_calls + errors + tool_errors"
        f" + unpriced_calls + input_tokens + output_tokens), sum(cost_usd) FROM {db}.trace_summary"
    )
    read_cpu = time.process_time() - started
    if not round_:  # the same answers whatever the states: compare with another checkout's
        print(f"  every trace's counts and tokens summed: {counted}, cost {cost:.6f}")
    return {
        "inserts CPU ms (trace_spans and its views)": cpu * 1e3,
        "partial rows before the merge": summary_rows,
        "their bytes per span": state_bytes / total,
        "merge CPU ms": merge_cpu * 1e3,
        "merge peak memory_usage MiB": peak["merge"] / 2**20,
        "engine MemoryTracking peak less before, MiB": (peak["engine"] - engine_before) / 2**20,
        "merged bytes per trace": merged_bytes / max(1, traces),
        "read every trace_summary, CPU ms": read_cpu * 1e3,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=200, help="spans per trace")
    parser.add_argument("--parts", type=int, default=8)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(CollectorSettings(storage=Path(tmp) / "data").store)
        assert isinstance(store, EmbeddedStore)
        try:
            store.migrate()
            _, columns = store.query(
                "SELECT name FROM system.columns WHERE database = {db:String}"
                " AND table = 'trace_summaries' AND type LIKE 'AggregateFunction%'",
                {"db": store.database},
            )
            print(
                f"trace_summaries states: {', '.join(c for (c,) in columns)}; traces of "
                f"{args.spans} spans, {args.parts} inserts of {args.batch} spans"
            )
            results = [one_round(store, args, round_) for round_ in range(args.rounds + 1)][1:]
        finally:
            store.close()
    for name in results[0]:
        figures = [result[name] for result in results]
        each = " ".join(f"{figure:9.1f}" for figure in figures)
        print(f"  {name:46} {each}   median {statistics.median(figures):9.1f}")


if __name__ == "__main__":
    main()
