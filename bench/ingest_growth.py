"""Ingest as the store grows: the same traffic into an empty store and into one that already
holds millions of LLM calls, with everything on, rounds interleaved (issue #22, item 6).

The grown store is built once (`--data DIR` keeps it; a second run reuses it, an interrupted
build goes on) with ClickHouse's own INSERT ... SELECT, as bench/dashboards.py does: `--calls`
LLM calls over the last 7 days in `llm_calls` (and its rollups, scores, experiments:
tests/grafana/seed.py), and for each call the rows the collector writes beside it: its span in
`otel_traces` and in `trace_spans` (whose view fills `trace_summaries`). The completed-runs
writer and the run-level evaluation start from the newest run written and judged: one row in
`completed_runs` and one run- and one session-level score (`mark_judged`) mark that they had
kept up with every loaded run. Every partition is then merged into one part per table, as the
engine's merges leave a store's past days in time (left as loaded, the collector would merge
the loaded days' parts on its CPU while the bench measures it: each round on a fresh copy of
the same parts); then the configured retention is applied once (a later start finds it in force).

Each round copies the built folder (`cp -a`) and runs bench/ingest.py's end-to-end run on the
copy and on an empty folder, in alternating order: a collector with the disk spool (fsync),
redaction with every built-in pattern, its default settings (`flush_interval`, `stats_interval`,
the completed-runs writer, `run_quiet_period`, `run_poll_interval`), retention configured, and
a trace-level and a session-level evaluation rule, so the run-level evaluation thread searches
too. It prints, per round and store: LLM spans/s stored end to end, the collector's CPU per
span (its process CPU time from the first request until every span is stored), and its peak
RSS; then the difference of the medians. Target: the two within 10 %.

Where the CPU goes, per round and store: the collector's CPU over the same span of time split
by thread (/proc/<pid>/task/*/stat; the collector names its threads: reader, writer,
completed-runs, run-evaluation, monitor, spool-fsync, ...; the main thread serves gRPC and the
API; chDB names its own pools: merges run in `MergeMutate`/`BgSchPool`), and the collector's
stage times over its life (`ASSAY_STAGE_TIMES`): wall time per insert by table, the counts of
new rows after inserts (system.parts), and the completed-runs writer's and the run-level
evaluation's queries. Then both split as medians side by side.

Run: `.venv/bin/python bench/ingest_growth.py [--calls 10000000] [--data DIR] [--rounds 3]
[--spans 60000]` (`--data` keeps the built store; delete it when done: it takes gigabytes).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ingest import IngestResult, Split, build_requests, report, run_ingest, watch_threads

from assay.collector.redaction import BUILTIN_PATTERNS
from assay.collector.retention import RetentionConfig, apply_retention
from assay.collector.store.embedded import EmbeddedStore
from tests.grafana.seed import seed

TARGET = 0.10  # the grown store's ingest within 10 % of the empty store's
RETENTION = {"traces": "30d", "logs": "14d", "llm_calls": "90d", "content": "14d", "scores": "365d"}
# Run-level rules on a sample: every bench span is a run of its own, far more runs per second
# than agents make, and judging one reads the store (two queries).
RULES = """\
evaluation:
  rules:
    - level: trace
      evaluators: [no_tool_errors]
      sample: 0.01
    - level: session
      evaluators: [no_loops]
      sample: 0.1
"""
# The tables the seeded calls fill, merged after loading (as the engine does in time).
MERGED = ("llm_calls", "otel_traces", "otel_traces_trace_id_ts", "trace_spans", "trace_summaries")


def report_split(result: IngestResult, split: Split) -> None:
    per_span = 1e6 / result.stored
    print("  collector CPU by thread (µs per span; threads that ended are in the total only)")
    threads = split.threads
    for name, cpu in sorted(threads.items(), key=lambda item: -item[1]):
        if cpu * per_span >= 1:
            print(f"    {name:24} {cpu * per_span:8.0f}")
    print("  stage times over the collector's life (ms per pass, passes, wall s in all)")
    wall, passes = split.stages.get("wall", {}), split.stages.get("passes", {})
    for name in sorted(wall, key=lambda n: -wall[n]):
        if wall[name] >= 0.05:
            n = int(passes[name])
            print(f"    {name:36} {wall[name] / n * 1e3:8.1f} ms {n:7} {wall[name]:8.1f} s")


def _count(store: EmbeddedStore, table: str) -> int:
    _, [[rows]] = store.query(f"SELECT count() FROM assay.{table}")
    return int(rows)


def _step(store: EmbeddedStore, table: str, calls: int, label: str) -> bool:
    """Whether `table` still has to be filled (an interrupted step is started again)."""
    have = _count(store, table)
    if have >= calls:
        print(f"  {label}: {have:,} rows already in the folder")
        return False
    if have:
        store.query(f"TRUNCATE TABLE assay.{table}")
    print(f"  {label} ...", flush=True)
    return True


def mark_judged(store: EmbeddedStore) -> None:
    """One online score per run level just after the newest loaded run: the run-level
    evaluation starts there, as on a store where it kept up. Each level's mark has a replacing
    key of its own (the trace or session id `loaded`): with the same key, a merge kept only one
    of them, and the trace-level search then started half an hour of loaded runs back
    (500,000 runs: 84 s per search on the 10M-call store)."""
    _, [[newest]] = store.query(
        "SELECT toUnixTimestamp64Milli(max(updated_at)) FROM assay.trace_summaries"
    )
    for level, key in (("trace", "trace_id"), ("session", "session_id")):
        _, [[marked]] = store.query(
            "SELECT toUnixTimestamp64Milli(max(timestamp)) FROM assay.scores "
            "WHERE source = 'online' AND level = {level:String}",
            {"level": level},
        )
        if int(marked) <= int(newest):
            store.query(
                f"INSERT INTO assay.scores (timestamp, name, value, source, level, {key}) "
                "VALUES (fromUnixTimestamp64Milli({at:Int64}), 'loaded', 1, 'online', "
                "{level:String}, 'loaded')",
                {"at": int(newest) + 1, "level": level},
            )


def merge_all(store: EmbeddedStore) -> None:
    """Merge each partition of more than one part into one (an earlier build left the loaded
    days as loaded: this finishes it)."""
    started = time.perf_counter()
    _, partitions = store.query(
        "SELECT table, partition_id, count() FROM system.parts WHERE database = 'assay' "
        "AND active GROUP BY table, partition_id HAVING count() > 1 ORDER BY table, partition_id"
    )
    for table, partition, parts in partitions:
        print(f"  merging {table} {partition} ({parts} parts) ...", flush=True)
        store.query(f"OPTIMIZE TABLE assay.{table} PARTITION ID '{partition}' FINAL")
    if partitions:
        print(f"merged {len(partitions)} partitions in {time.perf_counter() - started:.0f} s")


def build(folder: Path, calls: int, merge: bool = True) -> None:
    """`calls` LLM calls and the rows the collector writes beside them, in `folder`; each step
    is skipped when its table is full already (a build that was interrupted goes on)."""
    store = EmbeddedStore(folder, "assay")
    store.migrate()
    started = time.perf_counter()
    if _step(store, "llm_calls", calls, "llm_calls, its rollups, scores, experiments"):
        seed(store, calls, datetime.now(timezone.utc).replace(microsecond=0), hours=24 * 7)
    calls_only = "FROM assay.llm_calls WHERE experiment_id = ''"  # not the experiments' calls
    if _step(store, "otel_traces", calls, "otel_traces"):
        store.query(
            "INSERT INTO assay.otel_traces (Timestamp, TraceId, SpanId, ParentSpanId, SpanName, "
            "SpanKind, ServiceName, ResourceAttributes, ScopeName, SpanAttributes, Duration, "
            "StatusCode) SELECT timestamp, trace_id, span_id, '', concat('chat ', model), "
            "'Client', service_name, map('service.name', service_name), 'assay', "
            "map('gen_ai.operation.name', 'chat', 'gen_ai.provider.name', provider, "
            "'gen_ai.request.model', request_model, 'gen_ai.response.model', response_model, "
            "'gen_ai.usage.input_tokens', toString(input_tokens), "
            "'gen_ai.usage.output_tokens', toString(output_tokens), 'user.id', user_id, "
            "'session.id', session_id, 'gen_ai.input.messages', input_messages, "
            "'gen_ai.output.messages', output_messages), toUInt64(duration_ms * 1e6), "
            f"if(status = 'error', 'Error', 'Unset') {calls_only}",
            settings={"max_insert_block_size": 1_048_576},
        )
    if _step(store, "trace_spans", calls, "trace_spans, trace_summaries"):
        store.query("TRUNCATE TABLE assay.trace_summaries")
        store.query(
            "INSERT INTO assay.trace_spans (trace_id, span_id, parent_span_id, start, end, "
            "service_name, span_name, kind, status, dialect, agent_name, tool_name, llm, "
            "input_tokens, output_tokens, cost_usd, user_id, session_id, prompt_name, "
            "prompt_version) SELECT trace_id, span_id, '', timestamp, "
            "timestamp + toIntervalMillisecond(toUInt64(duration_ms)), service_name, "
            "concat('chat ', model), 'llm', status, 'genai', '', '', true, input_tokens, "
            "output_tokens, cost_usd, user_id, session_id, prompt_name, prompt_version "
            f"{calls_only}",
            settings={"max_insert_block_size": 1_048_576},
        )
    _, [[judged]] = store.query("SELECT count() FROM assay.scores WHERE level != 'call'")
    if not judged:
        print(f"loaded in {time.perf_counter() - started:.0f} s; merging ...", flush=True)
        # Where the collector's threads had got to: the newest run written and judged. Their
        # next looks start after every loaded run, as on a store where they kept up.
        _, [[newest]] = store.query(
            "SELECT toUnixTimestamp64Milli(max(updated_at)) FROM assay.trace_summaries"
        )
        at = "fromUnixTimestamp64Milli({at:Int64})"
        store.query(
            f"INSERT INTO assay.completed_runs (hour, trace_id, updated_at) "
            f"VALUES (toStartOfHour({at}), '', {at})",
            {"at": newest},
        )
        started = time.perf_counter()
        for table in MERGED:  # the partition the bench writes into
            store.query(f"OPTIMIZE TABLE assay.{table} PARTITION tuple(today()) FINAL")
        apply_retention(store, RetentionConfig(RETENTION))
        print(f"merged and retention applied in {time.perf_counter() - started:.0f} s")
    mark_judged(store)
    if merge:
        merge_all(store)
    _, rows = store.query(
        "SELECT table, sum(rows), count() FROM system.parts WHERE database = 'assay' AND active "
        "GROUP BY table ORDER BY sum(rows) DESC LIMIT 12"
    )
    print("rows (parts): " + ", ".join(f"{t} {n:,} ({p})" for t, n, p in rows))
    store.close()


def report_medians(results: dict[str, list[IngestResult]], splits: dict[str, list[Split]]) -> None:
    """The thread split and the stage times per span, medians of the rounds, side by side."""

    def median(kind: str, value: Callable[[IngestResult, Split], float]) -> float:
        return statistics.median(
            value(r, s) for r, s in zip(results[kind], splits[kind], strict=True)
        )

    def table(title: str, names: set[str], value: Callable[[str], Callable[..., float]]) -> None:
        print(f"{title:40}{'empty':>9}{'grown':>9}{'grown-empty':>13}")
        rows = [(n, median("empty", value(n)), median("grown", value(n))) for n in names]
        for name, empty, grown in sorted(rows, key=lambda row: -max(row[1], row[2])):
            if max(empty, grown) >= 1:
                print(f"  {name:38}{empty:9.0f}{grown:9.0f}{grown - empty:+13.0f}")

    every = [s for kind in splits for s in splits[kind]]
    threads = {name for s in every for name in s.threads}
    table(
        "\ncollector CPU by thread, µs per span",
        threads,
        lambda n: lambda r, s: s.threads.get(n, 0.0) / r.stored * 1e6,
    )
    stages = {name for s in every for name in s.stages.get("wall", {})}
    table(
        "stage wall time over the collector's life, µs per span",
        stages,
        lambda n: lambda r, s: s.stages.get("wall", {}).get(n, 0.0) / r.stored * 1e6,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10_000_000)
    parser.add_argument("--data", type=Path, help="keep the built store in this folder")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--spans", type=int, default=60_000, help="LLM spans per run (past run_quiet_period)"
    )
    parser.add_argument("--batch", type=int, default=200, help="spans per OTLP request")
    parser.add_argument("--senders", type=int, default=2, help="concurrent gRPC clients")
    parser.add_argument("--build-only", action="store_true", help="build the store and stop")
    parser.add_argument(
        "--as-loaded",
        action="store_true",
        help="leave the loaded days' parts unmerged (a quicker build; the collector then merges "
        "them while measured: MergeMutate in the thread split)",
    )
    args = parser.parse_args()
    folder = args.data or Path(tempfile.mkdtemp(prefix="assay-bench-growth-"))
    build(folder, args.calls, merge=not args.as_loaded)
    if args.build_only:
        return
    bodies = build_requests(args.spans, args.batch)
    env = {
        "ASSAY_REDACT": ",".join(BUILTIN_PATTERNS),
        "ASSAY_RETENTION": json.dumps(RETENTION),
        "ASSAY_FLUSH_INTERVAL": "0.5",  # the collector's default (the tests' start_collector: 0.1)
    }
    results: dict[str, list[IngestResult]] = {"empty": [], "grown": []}
    splits: dict[str, list[Split]] = {"empty": [], "grown": []}
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "assay.yaml"
        config.write_text(RULES)
        for round_no in range(args.rounds):
            order = ("empty", "grown") if round_no % 2 == 0 else ("grown", "empty")
            for kind in order:
                split = Split()
                before, at_stored = watch_threads(split)
                stages = Path(tmp) / "stages.json"
                result = run_ingest(
                    bodies,
                    args.spans,
                    args.senders,
                    "--config",
                    str(config),
                    before=before,
                    at_stored=at_stored,
                    store_from=folder if kind == "grown" else None,
                    **env,
                    ASSAY_STAGE_TIMES=str(stages),
                )
                split.stages = json.loads(stages.read_text()) if stages.exists() else {}
                stages.unlink(missing_ok=True)
                results[kind].append(result)
                splits[kind].append(split)
                load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
                report(f"\nround {round_no + 1}, {kind} store (load average {load})", result)
                report_split(result, split)
    print(
        f"\n{args.spans:,} LLM spans per run, {args.rounds} rounds, store of {args.calls:,} calls"
    )
    print(f"{'':28}{'empty':>12}{'grown':>12}{'grown/empty':>14}")
    rows = (
        ("stored LLM spans/s", lambda r: r.spans_per_s),
        ("collector CPU µs per span", lambda r: r.cpu_s / r.stored * 1e6),
        ("collector peak RSS MiB", lambda r: r.peak_rss / 2**20),
    )
    for label, value in rows:
        empty = statistics.median(map(value, results["empty"]))
        grown = statistics.median(map(value, results["grown"]))
        print(f"  {label:26}{empty:12,.0f}{grown:12,.0f}{grown / empty - 1:+13.1%}")
    report_medians(results, splits)
    empty_rate = statistics.median(r.spans_per_s for r in results["empty"])
    grown_rate = statistics.median(r.spans_per_s for r in results["grown"])
    slower = 1 - grown_rate / empty_rate
    verdict = "MET" if slower <= TARGET else "MISSED"
    print(f"target {verdict} (the grown store's rate within {TARGET:.0%} of the empty one's)")
    if not args.data:
        shutil.rmtree(folder)


if __name__ == "__main__":
    main()
