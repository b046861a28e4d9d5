"""Trace and session pages benchmark: the UI's server render of a 1,000-span trace, a span's
details, the sessions list and a session page, on a store holding 1 million agent runs.

Loads the runs (tests/grafana/seed.py's agent runs over 7 days: a root agent span, 1-5 LLM
calls and 0-3 tool calls each, sessions of a user's runs within 30 minutes) into an embedded
store with ClickHouse's INSERT ... SELECT, then sends one run of 1,000 spans (111 sub-agents,
each with 4 LLM calls carrying messages and 4 tool calls, under one root agent) through the
collector's own pipeline (normalizer, writer), and a conversation of 20 such smaller runs. Each
page is then asked for through the collector's HTTP application in process (routing, store
reads, template, the whole response) and the median and fastest of a few requests printed.
Target: < 300 ms for the 1,000-span trace page.

Run: `.venv/bin/python bench/traces.py [--runs 1000000] [--data DIR] [--repeat 7]`
(`--data` keeps the loaded folder; a second run with the same folder skips the load).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from unittest.mock import patch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from opentelemetry.proto.trace.v1.trace_pb2 import Span
from starlette.testclient import TestClient

from assay.collector.app import build_http_app
from assay.collector.completed_runs import write_all_completed
from assay.collector.pipeline import Pipeline
from assay.collector.records import traces
from assay.collector.settings import CollectorSettings
from assay.collector.spool import MemorySpool
from assay.collector.store.embedded import EmbeddedStore
from assay.instrumentation import semconv as sc
from tests.collector.otlp_builders import make_request, make_span
from tests.grafana.seed import seed_agent_runs

MS = 1_000_000
TARGET_MS = 300
SERVICE = "bench-agent"
SESSION = "bench-conversation"


def _messages(role: str, text: str) -> str:
    return json.dumps([{"role": role, "parts": [{"type": "text", "content": text}]}])


def agent_run(trace_id: bytes, start_ns: int, workers: int, session: str) -> Iterator[Span]:
    """A root agent with `workers` sub-agents, each calling an LLM and a tool four times: the
    spans of one run (1 + 9 × workers)."""
    root = os.urandom(8)
    common = {"trace_id": trace_id}
    yield make_span(
        "invoke_agent planner",
        {sc.OPERATION_NAME: sc.OP_INVOKE_AGENT, sc.AGENT_NAME: "planner"},
        span_id=root,
        start_ns=start_ns,
        duration_ns=(workers * 40 + 10) * MS,
        **common,
    )
    for w in range(workers):
        worker = os.urandom(8)
        at = start_ns + (w * 40 + 5) * MS
        yield make_span(
            f"invoke_agent worker-{w % 7}",
            {sc.OPERATION_NAME: sc.OP_INVOKE_AGENT, sc.AGENT_NAME: f"worker-{w % 7}"},
            span_id=worker,
            parent_span_id=root,
            start_ns=at,
            duration_ns=38 * MS,
            **common,
        )
        for step in range(4):
            yield make_span(
                "chat gpt-4o-mini",
                {
                    sc.OPERATION_NAME: sc.OP_CHAT,
                    sc.PROVIDER_NAME: "openai",
                    sc.REQUEST_MODEL: "gpt-4o-mini",
                    sc.USAGE_INPUT_TOKENS: 400 + step,
                    sc.USAGE_OUTPUT_TOKENS: 60 + step,
                    sc.SESSION_ID: session,
                    sc.USER_ID: "bench-user",
                    sc.INPUT_MESSAGES: _messages("user", f"Step {step} of task {w}: " + "x" * 400),
                    sc.OUTPUT_MESSAGES: _messages("assistant", f"Done with step {step}."),
                },
                parent_span_id=worker,
                start_ns=at + (1 + step * 9) * MS,
                duration_ns=5 * MS,
                **common,
            )
            yield make_span(
                "execute_tool lookup",
                {
                    sc.OPERATION_NAME: sc.OP_EXECUTE_TOOL,
                    sc.TOOL_NAME: "lookup",
                    sc.TOOL_CALL_ID: f"call-{w}-{step}",
                    sc.TOOL_CALL_ARGUMENTS: json.dumps({"task": w, "step": step}),
                    sc.TOOL_CALL_RESULT: json.dumps({"rows": list(range(20))}),
                },
                parent_span_id=worker,
                start_ns=at + (6 + step * 9) * MS,
                duration_ns=3 * MS,
                error=(w + step) % 17 == 0,
                **common,
            )


def send(store: EmbeddedStore, spans: list[Span]) -> None:
    """Through the collector's own pipeline: normalizer, trace_spans, tool_calls, llm_calls."""
    pipeline = Pipeline(store, MemorySpool(10**9, max_age=0.05), CollectorSettings())
    pipeline.start()
    for at in range(0, len(spans), 500):
        chunk = spans[at : at + 500]
        body = make_request(SERVICE, *chunk).SerializeToString()
        asyncio.run(pipeline.submit("traces", body, len(chunk)))
    assert pipeline.flush(120), "the pipeline did not write the bench's spans"
    pipeline.stop()


def timed(client: TestClient, label: str, url: str, repeat: int) -> None:
    times = []
    size = 0
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (url, response.status_code, response.text[:300])
        size = len(response.content)
    print(
        f"  {label:<48} median {statistics.median(times):7.1f} ms  (min {min(times):6.1f})"
        f"  {size / 1024:7.0f} KiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=1_000_000, help="agent runs (traces)")
    parser.add_argument("--data", type=Path, help="keep the loaded store in this folder")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    folder = args.data or Path(tempfile.mkdtemp(prefix="assay-bench-traces-"))
    store = EmbeddedStore(folder, "assay")
    store.migrate()
    _, found = store.query(
        "SELECT trace_id FROM assay.trace_spans WHERE service_name = {s:String}"
        " GROUP BY trace_id ORDER BY count() DESC LIMIT 1",
        {"s": SERVICE},
    )
    if found:
        print(f"reusing the runs already in {folder}")
        big = found[0][0]
        write_all_completed(store)  # runs loaded before migration 015: the first look
    else:
        started = time.perf_counter()
        seed_agent_runs(store, args.runs, datetime.now(timezone.utc), hours=24 * 7)
        print(f"loaded {args.runs:,} agent runs in {time.perf_counter() - started:.0f} s")
        now = time.time_ns()
        trace = os.urandom(16)
        spans = list(agent_run(trace, now - 3_600_000 * MS, 111, "bench-big-run"))
        for turn in range(20):  # a conversation: 20 runs of 10 spans, a minute apart
            spans += agent_run(os.urandom(16), now - (40 - turn) * 60_000 * MS, 1, SESSION)
        started = time.perf_counter()
        send(store, spans)
        took = time.perf_counter() - started
        print(f"sent {len(spans):,} spans through the pipeline in {took:.0f} s")
        big = trace.hex()
        write_all_completed(store)  # the collector's thread, once the runs went quiet
        for table in ("trace_summaries", "trace_spans", "completed_runs"):
            store.query(f"OPTIMIZE TABLE assay.{table} FINAL")
    (count,) = store.query("SELECT count() FROM assay.trace_summary")[1][0]
    spans_in_big = store.query(
        "SELECT count() FROM assay.trace_spans FINAL WHERE trace_id = {t:String}", {"t": big}
    )[1][0][0]
    _, picked = store.query(
        "SELECT span_id FROM assay.trace_spans WHERE trace_id = {t:String} AND llm LIMIT 1",
        {"t": big},
    )
    _, tool = store.query(
        "SELECT span_id FROM assay.tool_calls WHERE trace_id = {t:String} LIMIT 1", {"t": big}
    )
    _, small = store.query(
        "SELECT trace_id, session_id FROM assay.trace_spans WHERE service_name != {s:String}"
        " AND session_id != '' LIMIT 1",
        {"s": SERVICE},
    )
    print(f"{count:,} traces in the store; the big trace has {spans_in_big:,} spans")
    app = build_http_app(
        store,
        Pipeline(store, MemorySpool(10**6), CollectorSettings()),
        CollectorSettings(),
        "bench",
    )
    print(
        f"server render, {args.repeat} requests each (target < {TARGET_MS} ms for the big trace):"
    )
    with TestClient(app, base_url="http://localhost") as client:
        timed(client, f"/traces/<{spans_in_big} spans>", f"/traces/{big}", args.repeat)
        timed(
            client,
            "  ... with an LLM span's details",
            f"/traces/{big}?span={picked[0][0]}",
            args.repeat,
        )
        timed(
            client,
            "  ... with a tool span's details",
            f"/traces/{big}?span={tool[0][0]}",
            args.repeat,
        )
        timed(client, f"/api/traces/<{spans_in_big} spans>", f"/api/traces/{big}", args.repeat)
        timed(client, "/traces/<a seeded run>", f"/traces/{small[0][0]}", args.repeat)
        sessions = (
            ("/sessions (last 7 days)", "/sessions"),
            ("/sessions?since=24h", "/sessions?since=24h"),
            ("/sessions?user_id=u-7", "/sessions?user_id=u-7"),
            ("/sessions/<20 runs>", f"/sessions/{SESSION}"),
            ("/sessions/<a seeded session>", f"/sessions/{small[0][1]}"),
        )
        for label, url in sessions:
            timed(client, label, url, args.repeat)
        print("the same, every run summed from its spans (the read before completed_runs):")
        with patch.object(traces, "_completed", lambda store, runs: {}):
            for label, url in sessions:
                timed(client, label, url, args.repeat)
    store.close()
    print(f"store folder: {folder}" + ("" if args.data else " (temporary: delete it)"))


if __name__ == "__main__":
    main()
