"""`GET /api/traces/{trace_id}`: a run whole (summary, spans in tree order, scores);
`GET /api/sessions/{session_id}`: a conversation (its runs in order, with question and answer,
and its scores). Read as the UI's trace and session pages read them."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from assay.collector.api.encoding import found_response
from assay.collector.records.traces import get_session, get_trace


async def trace_endpoint(request: Request) -> Response:
    trace_id = request.path_params["trace_id"]
    return await found_response(
        request,
        f"no span of trace {trace_id!r} is stored (yet)",
        get_trace,
        trace_id,
        shape=lambda trace: {
            "summary": trace.summary,
            "duration_ms": trace.duration_ms,
            "spans": trace.spans,
            "scores": trace.scores,
        },
    )


async def session_endpoint(request: Request) -> Response:
    session_id = request.path_params["session_id"]
    return await found_response(
        request,
        f"no run of session {session_id!r} is stored (yet)",
        get_session,
        session_id,
        shape=lambda found: {
            "session_id": session_id,
            "totals": found.totals,
            "turns": found.turns,
            "scores": found.scores,
            "run_scores": found.run_scores,
        },
    )
