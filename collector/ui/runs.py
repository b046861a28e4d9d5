"""The UI's pages of whole runs and conversations: a trace's waterfall, the sessions list, a
session's turns."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from assay.collector.records import traces as queries
from assay.collector.records.calls import parse_time
from assay.collector.records.traces import SessionFilters
from assay.collector.ui import render
from assay.collector.ui.pages import NotFound, page, ui_endpoint, with_store


@ui_endpoint
async def trace_page(request: Request) -> Response:
    trace_id = request.path_params["trace_id"]
    trace = await with_store(request, queries.get_trace, trace_id)
    if trace is None:
        raise NotFound(f"no span of trace {trace_id} is stored (yet)")
    chosen = request.query_params.get("span", "")
    selected = next((s for s in trace.spans if s["span_id"] == chosen), None)
    if chosen and selected is None:
        raise NotFound(f"trace {trace_id} has no span {chosen}")
    detail = None
    messages: list[render.Message] = []
    if selected is not None:
        detail = await with_store(request, queries.span_detail, trace_id, selected)
        call = detail["call"]
        if call is not None:
            messages = render.conversation(
                call["system_instructions"], call["input_messages"], call["output_messages"]
            )
    return page(
        request,
        "trace.html",
        trace=trace,
        rows=render.waterfall(trace.spans, chosen),
        max_indent=render.MAX_INDENT,
        selected=selected,
        detail=detail,
        messages=messages,
    )


@ui_endpoint
async def sessions_page(request: Request) -> Response:
    filters = SessionFilters.from_params(request.query_params)
    now = dt.datetime.now(dt.timezone.utc)
    since = parse_time(filters.since or "7d", now)
    until = parse_time(filters.until, now) if filters.until else None
    sessions = await with_store(request, queries.list_sessions, filters, since, until)
    older = None
    if len(sessions) >= queries.SESSIONS_PAGE:
        last = sessions[-1]["end"]
        older = urlencode(
            [
                *((k, v) for k, v in filters.query_items() if k != "until"),
                ("until", last.isoformat()),
            ]
        )
    return page(request, "sessions.html", sessions=sessions, filters=filters, older=older)


@ui_endpoint
async def session_page(request: Request) -> Response:
    session_id = request.path_params["session_id"]
    found = await with_store(request, queries.get_session, session_id)
    if found is None:
        raise NotFound(f"no run of session {session_id} is stored (yet)")
    return page(request, "session.html", session=found, totals=found.totals)
