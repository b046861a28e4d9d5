"""Dashboard benchmark: every panel and alert rule query of the checked-in files over 10 million
LLM calls.

Loads the calls (and their scores and experiments) into an embedded store in a temporary folder
with ClickHouse's own INSERT ... SELECT FROM numbers(), then runs every panel's query as Grafana
would send it (macros and variables expanded, every variable "All", experiments left out) over
the last 24 hours and the last 7 days, and every alert rule's query over its own window, and
prints the median and fastest of a few runs each (the fastest: the query alone, when other
jobs share the machine). Target: < 500 ms.

The Agents dashboard reads 1 million agent runs (traces of 1-5 LLM and 0-3 tool calls) over the
same week.

Run: `.venv/bin/python bench/dashboards.py [--calls 10000000] [--agent-runs 1000000] [--data DIR]
[--runs 5]`
(`--data` keeps the loaded folder, and a second run with the same folder skips the load).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from assay.collector.completed_runs import write_all_completed
from assay.collector.grafana.macros import interpolate, interval_for
from assay.collector.store.embedded import EmbeddedStore
from tests.grafana.alert_rules import checked_in_rules, query_sql
from tests.grafana.panel_queries import panel_queries, resolve_variables
from tests.grafana.seed import seed, seed_agent_runs, seed_collector_stats

TARGET_MS = 500
ROLLUPS = (
    "llm_calls_1m",
    "llm_calls_1h",
    "llm_users_1d",
    "llm_sessions_1d",
    "llm_errors",
    "call_scores",
    "trace_summaries",
    "completed_runs",
)
RANGES = {"24h": timedelta(hours=24), "7d": timedelta(days=7)}


def load(store: EmbeddedStore, calls: int) -> datetime:
    """The end of the loaded window; loads `calls` calls unless the folder has them already."""
    _, [[have, newest]] = store.query("SELECT count(), max(timestamp) FROM assay.llm_calls")
    if have >= calls:
        print(f"reusing {have:,} calls already in the folder")
        return newest.replace(tzinfo=timezone.utc)
    end = datetime.now(timezone.utc).replace(microsecond=0)
    started = time.perf_counter()
    seed(store, calls, end, hours=24 * 7)
    seed_collector_stats(store, end, hours=24 * 7)
    print(f"loaded {calls:,} calls in {time.perf_counter() - started:.0f} s")
    return end


def load_runs(store: EmbeddedStore, runs: int, end: datetime) -> None:
    """Agent runs (traces) over the same week, unless the folder has them already."""
    _, [[have]] = store.query("SELECT count() FROM assay.tool_calls")
    if have:
        print("reusing the agent runs already in the folder")
        started = time.perf_counter()  # runs loaded before migration 015: the first look
        write_all_completed(store)
        print(f"wrote the runs not in completed_runs yet in {time.perf_counter() - started:.0f} s")
        return
    started = time.perf_counter()
    seed_agent_runs(store, runs, end, hours=24 * 7)
    print(f"loaded {runs:,} agent runs in {time.perf_counter() - started:.0f} s")


def merge(store: EmbeddedStore) -> None:
    """Merge the rollups' parts, as a server does in the background within minutes."""
    started = time.perf_counter()
    for table in ROLLUPS:
        store.query(f"OPTIMIZE TABLE assay.{table} FINAL")
    print(f"merged the rollups in {time.perf_counter() - started:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10_000_000)
    parser.add_argument("--agent-runs", type=int, default=1_000_000, help="agent runs (traces)")
    parser.add_argument("--data", type=Path, default=None, help="keep the store in this folder")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    folder = args.data or Path(tempfile.mkdtemp(prefix="assay-bench-dashboards-"))
    store = EmbeddedStore(folder, "assay")
    store.migrate()
    end = load(store, args.calls)
    load_runs(store, args.agent_runs, end)
    merge(store)
    tables = ", ".join(
        f"'{t}'"
        for t in ("llm_calls", "scores", "call_scores", "trace_spans", "tool_calls", *ROLLUPS)
    )
    _, sizes = store.query(
        "SELECT table, sum(rows) FROM system.parts WHERE database = 'assay' AND active "
        f"AND table IN ({tables}) GROUP BY table ORDER BY table"
    )
    print("rows: " + ", ".join(f"{t} {n:,}" for t, n in sizes))

    table = Table(title=f"Dashboard panel queries, {args.runs} runs each (ms)")
    for column in ("dashboard", "panel"):
        table.add_column(column)
    for span in RANGES:
        table.add_column(f"{span} median", justify="right")
        table.add_column(f"{span} min", justify="right")
    worst = 0.0
    panels = list(panel_queries())
    requests = {
        (dashboard, span): resolve_variables(store, dashboard, end - RANGES[span], end)
        for dashboard in {p.dashboard for p in panels}
        for span in RANGES
    }
    for panel in panels:
        cells = []
        for span in RANGES:
            request = requests[(panel.dashboard, span)]
            request.min_interval_s = interval_for(panel.min_interval)
            sql = interpolate(panel.sql, request)
            timings = []
            for _ in range(args.runs):
                started = time.perf_counter()
                store.query(sql)
                timings.append((time.perf_counter() - started) * 1000)
            worst = max(worst, statistics.median(timings))
            cells += [f"{statistics.median(timings):.0f}", f"{min(timings):.0f}"]
        table.add_row(panel.dashboard, panel.title, *cells)
    Console().print(table)

    rules = Table(title=f"Alert rule queries over their own window, {args.runs} runs each (ms)")
    for column in ("rule", "window", "median", "min", "rows"):
        rules.add_column(column, justify="left" if column == "rule" else "right")
    for alert in checked_in_rules():
        sql = query_sql(alert, end)
        timings = []
        for _ in range(args.runs):
            started = time.perf_counter()
            _, rows = store.query(sql)
            timings.append((time.perf_counter() - started) * 1000)
        worst = max(worst, statistics.median(timings))
        window = alert["data"][0]["relativeTimeRange"]["from"]
        rules.add_row(
            alert["uid"],
            f"{window // 3600} h" if window >= 3600 else f"{window // 60} min",
            f"{statistics.median(timings):.0f}",
            f"{min(timings):.0f}",
            str(len(rows)),
        )
    Console().print(rules)
    verdict = "every query under" if worst < TARGET_MS else "SLOWER than"
    print(f"slowest median {worst:.0f} ms: {verdict} the {TARGET_MS} ms target")
    store.close()


if __name__ == "__main__":
    main()
