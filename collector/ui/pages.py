"""The UI's pages: the calls list, a call, the review queue, grading, login."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from assay.collector.api.feedback import Feedback, record_feedback
from assay.collector.store.base import Store, StoreError
from assay.collector.ui import queries, render, session
from assay.collector.ui.queries import CallFilters, Cursor

HERE = Path(__file__).parent
PAGE_SIZE = 50

templates = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    # Every value is escaped unless a template says otherwise (none does): prompt and response
    # text is attacker-controlled.
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
templates.filters.update(render.FILTERS)


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def page(request: Request, name: str, status: int = 200, **context: Any) -> Response:
    """Render a template with what every page needs (CSRF token, reviewer, login state)."""
    state = request.app.state
    html = templates.get_template(name).render(
        request=request,
        csrf=session.csrf_token(request),
        reviewer=session.reviewer(request),
        protected=state.api_auth.enabled,
        path=request.url.path + (f"?{request.url.query}" if request.url.query else ""),
        **context,
    )
    response = HTMLResponse(html, status)
    session.remember_csrf(request, response)
    return response


def error_page(request: Request, message: str, status: int = 400) -> Response:
    return page(request, "error.html", status, message=message)


async def read_store(request: Request, fn: Any, *args: Any, **kwargs: Any) -> Any:
    return await asyncio.to_thread(fn, _store(request), *args, **kwargs)


def _query(filters: CallFilters, **extra: str) -> str:
    return urlencode([*filters.query_items(), *((k, v) for k, v in extra.items() if v)])


# --- calls ---------------------------------------------------------------------------------------
async def calls_page(request: Request) -> Response:
    params = request.query_params
    try:
        filters = CallFilters.from_params(params)
        after = Cursor.decode(params["after"]) if params.get("after") else None
        before = Cursor.decode(params["before"]) if params.get("before") else None
    except ValueError as exc:
        return error_page(request, str(exc))
    try:
        result = await read_store(
            request, queries.list_calls, filters, before or after, before is None, PAGE_SIZE
        )
        choices = await read_store(request, queries.filter_choices)
    except StoreError as exc:
        return error_page(request, f"the store did not answer: {exc}", 503)
    return page(
        request,
        "calls.html",
        calls=result.calls,
        filters=filters,
        choices=choices,
        newer=_query(filters, before=result.prev_cursor.encode()) if result.prev_cursor else None,
        older=_query(filters, after=result.next_cursor.encode()) if result.next_cursor else None,
        filter_query=_query(filters),
    )


async def call_page(request: Request) -> Response:
    span_id = request.path_params["span_id"]
    try:
        filters = CallFilters.from_params(request.query_params)
    except ValueError as exc:
        return error_page(request, str(exc))
    try:
        call = await read_store(request, queries.get_call, span_id)
        if call is None:
            return error_page(request, f"no call with span id {span_id}", 404)
        spans = await read_store(request, queries.trace_spans, call["trace_id"])
        here = Cursor(call["timestamp_ns"], span_id)
        older = await read_store(request, queries.neighbour, filters, here, True)
        newer = await read_store(request, queries.neighbour, filters, here, False)
    except StoreError as exc:
        return error_page(request, f"the store did not answer: {exc}", 503)
    review = request.query_params.get("review") == "1"
    keep = _query(filters, review="1" if review else "")
    mine = [
        s
        for s in call["scores"]
        if s["source"] == "human" and s["author"] == (session.reviewer(request) or "anonymous")
    ]
    return page(
        request,
        "call.html",
        call=call,
        messages=render.conversation(
            call["system_instructions"], call["input_messages"], call["output_messages"]
        ),
        spans=spans,
        my_grade=mine[-1] if mine else None,
        older=f"/calls/{older}?{keep}" if older else None,
        newer=f"/calls/{newer}?{keep}" if newer else None,
        review=review,
        filter_query=_query(filters),
        next_ungraded=f"/review/next?{_query(filters, after=here.encode())}",
    )


# --- the review queue ----------------------------------------------------------------------------
async def review_next(request: Request) -> Response:
    """Go to the newest call (after `after`, if given) that this reviewer has not graded."""
    params = request.query_params
    try:
        filters = CallFilters.from_params(params)
        after = Cursor.decode(params["after"]) if params.get("after") else None
    except ValueError as exc:
        return error_page(request, str(exc))
    filters.ungraded_by = session.reviewer(request) or "anonymous"
    try:
        span_id = await read_store(request, queries.neighbour, filters, after, True)
        if span_id is None and after is not None:  # wrap around to newer ungraded calls
            span_id = await read_store(request, queries.neighbour, filters, None, True)
    except StoreError as exc:
        return error_page(request, f"the store did not answer: {exc}", 503)
    if span_id is None:
        return page(request, "review_done.html", filter_query=_query(filters))
    return RedirectResponse(f"/calls/{span_id}?{_query(filters, review='1')}", 303)


async def review_page(request: Request) -> Response:
    """The queue's start: choose filters and a name, then grade call after call."""
    try:
        filters = CallFilters.from_params(request.query_params)
        choices = await read_store(request, queries.filter_choices)
    except ValueError as exc:
        return error_page(request, str(exc))
    except StoreError as exc:
        return error_page(request, f"the store did not answer: {exc}", 503)
    return page(request, "review.html", filters=filters, choices=choices)


# --- grading -------------------------------------------------------------------------------------
async def grade(request: Request) -> Response:
    """A grade from a form (or the page's script, which asks for JSON back)."""
    form = await request.form()
    wants_json = "application/json" in request.headers.get("accept", "")
    try:
        session.check_csrf(request, form)
    except session.CsrfRefused as exc:
        if wants_json:
            return JSONResponse({"error": str(exc)}, 403)
        return error_page(request, str(exc), 403)
    fields = {k: form.get(k) for k in ("trace_id", "span_id", "value", "comment")}
    fields["author"] = session.reviewer(request) or None
    try:
        feedback = Feedback.parse(fields)
        row = await asyncio.to_thread(record_feedback, _store(request), feedback)
    except ValueError as exc:
        if wants_json:
            return JSONResponse({"error": str(exc)}, 400)
        return error_page(request, str(exc))
    except StoreError as exc:
        return error_page(request, f"could not store the grade: {exc}", 503)
    if wants_json:
        return JSONResponse({"stored": True, "value": feedback.value, "author": row.author})
    return RedirectResponse(session.safe_next(str(form.get("next") or "")), 303)


# --- who is at the browser -----------------------------------------------------------------------
async def login(request: Request) -> Response:
    check = request.app.state.api_auth
    if request.method == "GET":
        return page(request, "login.html", error="")
    form = await request.form()
    try:
        session.check_csrf(request, form)
    except session.CsrfRefused as exc:
        return page(request, "login.html", 403, error=str(exc))
    outcome = session.sign_in(
        request, check, str(form.get("token") or ""), str(form.get("name") or "")
    )
    if isinstance(outcome, str):
        return page(request, "login.html", 401, error=outcome)
    return outcome


async def logout(request: Request) -> Response:
    try:
        session.check_csrf(request, await request.form())
    except session.CsrfRefused as exc:
        return error_page(request, str(exc), 403)
    return session.sign_out()


async def set_reviewer(request: Request) -> Response:
    form = await request.form()
    try:
        session.check_csrf(request, form)
    except session.CsrfRefused as exc:
        return error_page(request, str(exc), 403)
    return session.set_reviewer(request, str(form.get("name") or ""), str(form.get("next") or ""))
