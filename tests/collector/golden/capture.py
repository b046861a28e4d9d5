"""Make the golden normalize corpus: the OTLP trace requests the collector's and the
instrumentation's tests produce, the bench's spans, and the rows today's code makes of them.

    .venv/bin/python -m tests.collector.golden.capture            # corpus and rows, anew
    .venv/bin/python -m tests.collector.golden.capture --rows     # rows only (the corpus kept)

`--rows` is what a deliberate change of the rows (a price in the prices file, a new column)
reruns; a change meant to keep every row as it was must pass tests/collector/test_golden_rows.py
without it. The corpus: every request a test hands to `normalize_traces` (hand-built spans of
every dialect, agent runs), every span an instrumentation test exports to memory and every
recorded call replayed (Assay's own spans of every provider, encoded as the OTLP exporter does),
and a few of `bench/ingest.py`'s requests.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import gzip
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
CORPUS = HERE / "corpus.jsonl.gz"
ROWS = HERE / "rows.json"
# The test files whose spans make the corpus (in-process ones: a collector in a child process
# normalizes out of reach).
SOURCES = (
    "tests/collector/test_dialects.py",
    "tests/collector/test_normalize.py",
    "tests/collector/test_agent_runs.py",
    "tests/collector/test_stacked_calls.py",
    "tests/collector/test_cost.py",
    "tests/collector/test_redaction.py",
    "tests/collector/test_redaction_coverage.py",
    "tests/instrumentation",
)
MAX_REQUEST_BYTES = 32_000
BENCH_REQUESTS = 2


def capture() -> list[bytes]:
    import pytest
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from assay.collector.normalize import traces

    seen: dict[str, bytes] = {}

    def keep(body: bytes) -> None:
        if len(body) <= MAX_REQUEST_BYTES:
            seen.setdefault(hashlib.sha256(body).hexdigest(), body)

    normalize = traces.normalize_traces

    def recording_normalize(request: Any, batch: Any = None) -> Any:
        keep(request.SerializeToString(deterministic=True))
        return normalize(request, batch)

    export = InMemorySpanExporter.export

    def recording_export(self: Any, spans: Any) -> Any:
        with contextlib.suppress(Exception):  # a test's deliberately broken span: not kept
            keep(encode_spans(spans).SerializeToString(deterministic=True))
        return export(self, spans)

    traces.normalize_traces = recording_normalize  # type: ignore[assignment]
    InMemorySpanExporter.export = recording_export  # type: ignore[method-assign]
    try:
        pytest.main(["-q", "-p", "no:cacheprovider", "-m", "not peers and not docker", *SOURCES])
    finally:
        traces.normalize_traces = normalize  # type: ignore[assignment]
        InMemorySpanExporter.export = export  # type: ignore[method-assign]
    sys.path.insert(0, str(HERE.parents[2] / "bench"))
    from ingest import build_requests

    for body in build_requests(2 * BENCH_REQUESTS, 2)[:BENCH_REQUESTS]:
        keep(body)
    for body in extras():
        keep(body)
    return distinct(sorted(seen.values()))


def extras() -> list[bytes]:
    """What the tests' spans lack: links, every kind of value, values out of a column's range."""
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

    from assay.instrumentation import semconv as sc
    from tests.collector.otlp_builders import make_request, make_span

    start = 1_764_000_000_000_000_000
    span = make_span(
        "chat odd-values",
        {
            sc.OPERATION_NAME: sc.OP_CHAT,
            sc.PROVIDER_NAME: "anthropic",
            sc.REQUEST_MODEL: "claude-sonnet-4",
            sc.USAGE_INPUT_TOKENS: 2**63 - 1,
            sc.USAGE_OUTPUT_TOKENS: -3,
            sc.USAGE_CACHE_READ_INPUT_TOKENS: 2.5,
            sc.USAGE_CACHE_CREATION_INPUT_TOKENS: "12",
            sc.COST_USD: float("inf"),
            sc.RESPONSE_TIME_TO_FIRST_CHUNK: 0.25,
            sc.RESPONSE_FINISH_REASONS: "stop",
            sc.TAGS: ["a", 1, 2.0, True],
            sc.REQUEST_STREAM: True,
            sc.INPUT_MESSAGES: [{"role": "user", "parts": [{"type": "text", "content": "hé"}]}],
            "nested": {"a": [1, {"b": None}], "c": 1e300},
            "flag": False,
            "ratio": float("nan"),
        },
        trace_id=bytes(range(16)),
        span_id=bytes(range(8)),
        parent_span_id=bytes(range(8, 16)),
        start_ns=start,
        duration_ns=-5,
        error=True,
        events=(("exception", {"exception.type": "ValueError"}), ("gen_ai.choice", {"index": 0})),
    )
    span.attributes.append(KeyValue(key="raw", value=AnyValue(bytes_value=b"\x00\xff")))
    span.attributes.append(KeyValue(key="empty", value=AnyValue()))
    span.attributes.append(KeyValue(key="flag", value=AnyValue(int_value=7)))  # a repeated key
    link = span.links.add(trace_id=bytes(16), span_id=bytes(8), trace_state="k=v")
    link.attributes.append(KeyValue(key="link.n", value=AnyValue(int_value=1)))
    span.links.add(trace_id=bytes(range(16, 32)), span_id=bytes(range(16, 24)))
    tool = make_span(
        "execute_tool lookup",
        {sc.OPERATION_NAME: sc.OP_EXECUTE_TOOL, sc.TOOL_NAME: "lookup", "user.id": "u"},
        trace_id=bytes(range(16)),
        span_id=bytes(range(24, 32)),
        parent_span_id=bytes(range(8)),
        start_ns=start + 10,
    )
    plain = make_span("GET /", {"http.method": "GET"}, start_ns=start, span_id=bytes(8))
    plain.kind = 2
    request = make_request("odd", span, tool, plain)
    request.resource_spans[0].scope_spans[0].scope.version = "1.2"
    return [request.SerializeToString(deterministic=True)]


def _shape(body: bytes) -> tuple[Any, ...]:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    request = ExportTraceServiceRequest.FromString(body)
    return tuple(
        (
            scope_spans.scope.name,
            tuple(sorted(kv.key for kv in span.attributes)),
            tuple(event.name for event in span.events),
            span.status.code,
            len(span.links),
        )
        for resource_spans in request.resource_spans
        for scope_spans in resource_spans.scope_spans
        for span in scope_spans.spans
    )


def distinct(bodies: list[bytes]) -> list[bytes]:
    """One request of each shape (its spans' attribute names, events, status and links)."""
    shapes: dict[tuple[Any, ...], bytes] = {}
    for body in bodies:
        shapes.setdefault(_shape(body), body)
    return sorted(shapes.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", action="store_true", help="keep the corpus, write the rows")
    args = parser.parse_args()
    if not args.rows:
        bodies = capture()
        lines = "".join(json.dumps(base64.b64encode(b).decode()) + "\n" for b in bodies)
        CORPUS.write_bytes(gzip.compress(lines.encode(), mtime=0))
    from assay.instrumentation import pricing
    from tests.collector.golden.rows import corpus, rows_of

    pricing.activate(pricing.builtin_table())
    ROWS.write_text(json.dumps(rows_of(corpus()), indent=1) + "\n")
    print(f"{CORPUS}: {len(corpus())} requests; {ROWS} written")


if __name__ == "__main__":
    main()
