"""Instructions per LLM span of the ingest path's Python stages, counted by valgrind's callgrind,
which the machine's load does not move (CPU time on a shared machine does, by tens of percent).

    .venv/bin/python bench/ingest_instructions.py [--spans 500] [--plain]

runs itself again under `valgrind --tool=callgrind --instr-atstart=no` and counts, for
`bench/ingest.py`'s spans in requests of 50 after two requests of warm-up (the collector's
garbage collector settings), only around each stage's loop (callgrind client requests), the
receivers' stages as they run them: `decode` (`decode_protobuf`), `validate` (`check_request`
with the migrations' 90-day bound on both of a span's tables, as the collector passes it),
`redact` (`redact_request` with every built-in pattern) and `spool append` (a disk spool's
`append`, without fsync: a system call's work is the kernel's, never counted); and the writer's:
`spool read` (the sealed segment of those requests read back, `next_segment`), `normalize`
(`normalize_traces` of every request into one batch), `correlate + link` (that stage of
`Pipeline._rows` over the batch) and `build columns` (`insert_arguments` of each table's rows,
as the store's insert begins). Needs valgrind and
gcc with valgrind's headers (`bench/overhead.py` compiles the small client-request library).
"""

from __future__ import annotations

import argparse
import ctypes
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from callgrind import count_script
from ingest import build_plain_requests, build_requests
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)

from assay.collector.normalize.evaluation_results import evaluation_scores
from assay.collector.normalize.llm_messages import attach_log_messages
from assay.collector.normalize.otlp import decode_protobuf
from assay.collector.normalize.stacked_calls import merge_stacked_calls
from assay.collector.normalize.traces import TraceBatch, normalize_traces
from assay.collector.pipeline import tune_gc
from assay.collector.receivers.content import redact_request
from assay.collector.receivers.validation import check_request
from assay.collector.redaction import BUILTIN_PATTERNS, Redactor
from assay.collector.retention import SIGNAL_TABLES
from assay.collector.schema import insert_arguments
from assay.collector.spool import DiskSpool

PER_REQUEST = 50
KEPT_NS = 90 * 86_400 * 10**9
STAGES = (
    "decode",
    "validate",
    "redact",
    "spool append",
    "spool read",
    "normalize",
    "correlate + link",
    "build columns",
)
WARM_UP = 2  # requests


def _count(library: str, spans: int, plain: bool) -> None:
    """Under valgrind: each stage's loop between a zeroing and a dump named after it."""
    callgrind = ctypes.CDLL(library)
    build = build_plain_requests if plain else build_requests
    bodies = build(spans + WARM_UP * PER_REQUEST, PER_REQUEST)
    redactor = Redactor(BUILTIN_PATTERNS)
    tune_gc()
    for body in bodies[:WARM_UP]:
        check_request(decode_protobuf("traces", body))
    callgrind.cg_start()
    for body in bodies[WARM_UP:]:
        decode_protobuf("traces", body)
    callgrind.cg_dump(b"decode")
    requests = [ExportTraceServiceRequest.FromString(body) for body in bodies]
    callgrind.cg_start()
    for request in requests[WARM_UP:]:
        # the bound the collector passes: the migrations' 90 days on both of a span's tables
        now = time.time_ns()
        check_request(request, {table: now - KEPT_NS for table in SIGNAL_TABLES["traces"]})
    callgrind.cg_dump(b"validate")
    requests = [ExportTraceServiceRequest.FromString(body) for body in bodies]
    for request in requests[:WARM_UP]:
        redact_request(request, redactor)
    callgrind.cg_start()
    for request in requests[WARM_UP:]:
        redact_request(request, redactor)
    callgrind.cg_dump(b"redact")
    with tempfile.TemporaryDirectory() as folder:
        # fsync="never": the kernel's work is not counted anyway, only the process's
        spool = DiskSpool(Path(folder), max_bytes=2**40, max_age=3600, fsync="never")
        for body in bodies[:WARM_UP]:
            spool.append("traces", body)
        callgrind.cg_start()
        for body in bodies[WARM_UP:]:
            spool.append("traces", body)
        callgrind.cg_dump(b"spool append")
        spool.seal()
        callgrind.cg_start()
        spool.next_segment(timeout=1)
        callgrind.cg_dump(b"spool read")
        spool.close()
    requests = [ExportTraceServiceRequest.FromString(body) for body in bodies]
    for request in requests[:WARM_UP]:
        normalize_traces(request)
    batch = TraceBatch()
    callgrind.cg_start()
    for request in requests[WARM_UP:]:
        normalize_traces(request, batch)
    callgrind.cg_dump(b"normalize")
    callgrind.cg_start()  # as Pipeline._rows does once a segment's requests are normalized
    batch.llm_calls = merge_stacked_calls(batch.llm_calls)
    attach_log_messages(batch.llm_calls, [])
    batch.link()
    evaluation_scores(batch.traces, [])
    callgrind.cg_dump(b"correlate + link")
    callgrind.cg_start()
    for rows in (batch.traces, batch.llm_calls, batch.spans, batch.tool_calls):
        if rows:
            insert_arguments(rows)
    callgrind.cg_dump(b"build columns")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=500, help="LLM spans counted per stage")
    parser.add_argument("--plain", action="store_true", help="plain web-service spans, no LLM call")
    parser.add_argument("--child", metavar="LIB", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _count(args.child, args.spans, args.plain)
        return
    counts = count_script(
        __file__, ["--spans", str(args.spans), *(["--plain"] if args.plain else [])]
    )
    kind = "plain" if args.plain else "LLM"
    print(f"instructions per {kind} span ({args.spans} of bench/ingest.py's spans, callgrind)")
    for stage in STAGES:
        print(f"  {stage:<16} {counts[stage] / args.spans:>10,.0f}")


if __name__ == "__main__":
    main()
