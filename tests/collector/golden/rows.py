"""The rows the collector makes of the golden corpus, in a form that compares exactly: each
table's columns as `insert_arguments` gives them, every value by its `repr` (so 1 and 1.0, a list
and a tuple, a map's key order all count), kept as one digest per column."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
from pathlib import Path
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from assay.collector.normalize.stacked_calls import merge_stacked_calls
from assay.collector.normalize.traces import TraceBatch, normalize_traces
from assay.collector.schema import insert_arguments

CORPUS = Path(__file__).parent / "corpus.jsonl.gz"


def corpus() -> list[ExportTraceServiceRequest]:
    requests = []
    for line in gzip.decompress(CORPUS.read_bytes()).decode().splitlines():
        request = ExportTraceServiceRequest()
        request.ParseFromString(base64.b64decode(json.loads(line)))
        requests.append(request)
    return requests


def reprs(column: Any) -> list[str]:
    return [repr(value) for value in column]


def digest(column: Any) -> str:
    return hashlib.sha256("\n".join(reprs(column)).encode()).hexdigest()[:16]


def rows_of(requests: list[ExportTraceServiceRequest]) -> dict[str, Any]:
    """Each request a writer batch of its own (stacked calls folded, rows linked, as the writer
    does a segment's), their rows by table."""
    tables: dict[str, list[Any]] = {}
    for request in requests:
        batch = TraceBatch()
        normalize_traces(request, batch)
        batch.llm_calls = merge_stacked_calls(batch.llm_calls)
        batch.link()
        for rows in (batch.traces, batch.llm_calls, batch.spans, batch.tool_calls):
            if rows:
                tables.setdefault(rows[0].table, []).extend(rows)
    out: dict[str, Any] = {}
    for rows in tables.values():
        table, columns, names = insert_arguments(rows)
        out[table] = {"rows": len(rows)} | {
            name: digest(column) for name, column in zip(names, columns, strict=True)
        }
    return out
