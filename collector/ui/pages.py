"""The UI's pages: the calls list, a call, the review queue, grading, login."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from assay.collector.auth import client_address, too_many_guesses
from assay.collector.normalize.cost import UNPRICED_CALLS
from assay.collector.records import calls as queries
from assay.collector.records import traces as runs
from assay.collector.records.calls import CallFilters, Cursor
from assay.collector.records.feedback import DEFAULT_AUTHOR, Feedback, record_feedback
from assay.collector.records.read_gate import RETRY_AFTER_S, ReadsBusy, stored
from assay.collector.schema import FEEDBACK_NAME, ScoreSource
from assay.collector.store.base import Store, StoreError
from assay.collector.store.reading import ReadLimitExceeded
from assay.collector.token_guesses import TokenGuesses
from assay.collector.ui import render, session
from assay.evaluators.base import EvalInput

HERE = Path(__file__).parent
PAGE_SIZE = 50
CALL_PAGE_SPANS = 200  # a call page lists this many spans of its trace; the trace page all
# A second fence behind escaping: only the UI's own script runs, nothing frames the pages
# (no clickjacked grade buttons), forms post only here.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}

templates = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    # Every value is escaped unless a template says otherwise (none does): prompt and response
    # text is attacker-controlled.
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
templates.filters.update(render.FILTERS)
# Who made a score, spelled once (collector/schema.py): `s.source == sources.HUMAN`.
templates.globals.update(
    sources=ScoreSource, feedback_name=FEEDBACK_NAME, unpriced_calls=UNPRICED_CALLS
)


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
    response = HTMLResponse(html, status, headers=SECURITY_HEADERS)
    session.remember_csrf(request, response)
    return response


def error_page(request: Request, message: str, status: int = 400) -> Response:
    if "application/json" in request.headers.get("accept", ""):  # the page's script asked
        return JSONResponse({"error": message}, status)
    return page(request, "error.html", status, message=message)


class NotFound(Exception):
    pass


Endpoint = Callable[[Request], Awaitable[Response]]


def ui_endpoint(endpoint: Endpoint) -> Endpoint:
    """Failures become a page that says what went wrong: bad input 400, nothing there 404,
    a cross-site request 403, the store not answering 503."""

    @functools.wraps(endpoint)
    async def wrapped(request: Request) -> Response:
        try:
            return await endpoint(request)
        except session.CsrfRefused as exc:
            return error_page(request, str(exc), 403)
        except NotFound as exc:
            return error_page(request, str(exc), 404)
        except ValueError as exc:
            return error_page(request, str(exc), 400)
        except ReadsBusy as exc:
            busy = error_page(request, str(exc), 503)
            busy.headers["Retry-After"] = str(RETRY_AFTER_S)
            return busy
        except ReadLimitExceeded as exc:
            return error_page(request, str(exc), 400)
        except StoreError as exc:
            return error_page(request, f"the store did not answer: {exc}", 503)

    return wrapped


async def with_store(request: Request, fn: Any, *args: Any) -> Any:
    """A read of the page's, through the read gate (collector/api/read_gate.py)."""
    return await stored(request, fn, *args)


async def write_store(request: Request, fn: Any, *args: Any) -> Any:
    """A person's write (a grade, a dataset item): not a read, so not held up by the reads'
    queue nor bound by their limits."""
    return await asyncio.to_thread(fn, _store(request), *args)


def _query(filters: CallFilters, **extra: str) -> str:
    return urlencode([*filters.query_items(), *((k, v) for k, v in extra.items() if v)])


def _cursor(params: Mapping[str, str], name: str) -> Cursor | None:
    return Cursor.decode(params[name]) if params.get(name) else None


# --- calls ---------------------------------------------------------------------------------------
@ui_endpoint
async def calls_page(request: Request) -> Response:
    filters = CallFilters.from_params(request.query_params)
    after, before = _cursor(request.query_params, "after"), _cursor(request.query_params, "before")
    result = await with_store(
        request, queries.list_calls, filters, before or after, before is None, PAGE_SIZE
    )
    choices = await with_store(request, queries.filter_choices)
    totals = await with_store(request, queries.call_totals, filters)
    return page(
        request,
        "calls.html",
        calls=result.calls,
        totals=totals,
        filters=filters,
        choices=choices,
        newer=_query(filters, before=result.prev_cursor.encode()) if result.prev_cursor else None,
        older=_query(filters, after=result.next_cursor.encode()) if result.next_cursor else None,
        filter_query=_query(filters),
    )


@ui_endpoint
async def call_page(request: Request) -> Response:
    span_id = request.path_params["span_id"]
    filters = CallFilters.from_params(request.query_params)
    call = await with_store(request, queries.get_call, span_id)
    if call is None:
        raise NotFound(f"no call with span id {span_id}")
    trace = await with_store(request, runs.get_trace, call["trace_id"])
    here = Cursor(call["timestamp_ns"], span_id)
    older = await with_store(request, queries.neighbour, filters, here, True)
    newer = await with_store(request, queries.neighbour, filters, here, False)
    datasets = await with_store(request, queries.dataset_names)
    experiment = None
    if call.get("experiment_id"):
        experiment = await with_store(request, queries.experiment_of, call["experiment_id"])
    review = request.query_params.get("review") == "1"
    keep = _query(filters, review="1" if review else "")
    mine = [
        s
        for s in call["scores"]
        if s["source"] == ScoreSource.HUMAN
        and s["author"] == (session.reviewer(request) or DEFAULT_AUTHOR)
    ]
    return page(
        request,
        "call.html",
        call=call,
        experiment=experiment,
        messages=render.conversation(
            call["system_instructions"], call["input_messages"], call["output_messages"]
        ),
        spans=trace.spans[:CALL_PAGE_SPANS] if trace else [],
        more_spans=max(len(trace.spans) - CALL_PAGE_SPANS, 0) if trace else 0,
        datasets=datasets,
        expected=EvalInput.from_llm_call(call).output,
        my_grade=mine[-1] if mine else None,
        older=f"/calls/{older}?{keep}" if older else None,
        newer=f"/calls/{newer}?{keep}" if newer else None,
        review=review,
        filter_query=_query(filters),
        next_ungraded=f"/review/next?{_query(filters, after=here.encode())}",
    )


# --- the review queue ----------------------------------------------------------------------------
@ui_endpoint
async def review_next(request: Request) -> Response:
    """Go to the newest call (after `after`, if given) that this reviewer has not graded."""
    filters = CallFilters.from_params(request.query_params)
    after = _cursor(request.query_params, "after")
    filters.ungraded_by = session.reviewer(request) or DEFAULT_AUTHOR
    span_id = await with_store(request, queries.neighbour, filters, after, True)
    if span_id is None and after is not None:  # wrap around to newer ungraded calls
        span_id = await with_store(request, queries.neighbour, filters, None, True)
    if span_id is None:  # say which: nothing matches, or this reviewer graded all that does
        anything = await with_store(
            request, queries.neighbour, dataclasses.replace(filters, ungraded_by=""), None, True
        )
        return page(
            request,
            "review_done.html",
            filter_query=_query(filters),
            shown=filters.query_items(),
            matches=anything is not None,
            grader=filters.ungraded_by,
        )
    return RedirectResponse(f"/calls/{span_id}?{_query(filters, review='1')}", 303)


@ui_endpoint
async def review_page(request: Request) -> Response:
    """The queue's start: choose filters and a name, then grade call after call."""
    filters = CallFilters.from_params(request.query_params)
    choices = await with_store(request, queries.filter_choices)
    return page(request, "review.html", filters=filters, choices=choices)


# --- grading -------------------------------------------------------------------------------------
@ui_endpoint
async def grade(request: Request) -> Response:
    """A grade from a form (or the page's script, which asks for JSON back)."""
    form = await request.form()
    session.check_csrf(request, form)
    fields = {k: form.get(k) for k in ("trace_id", "span_id", "value", "comment")}
    fields["author"] = session.reviewer(request) or None
    feedback = Feedback.parse(fields)
    row = await write_store(request, record_feedback, feedback)
    if "application/json" in request.headers.get("accept", ""):
        return JSONResponse({"stored": True, "value": feedback.value, "author": row.author})
    return RedirectResponse(session.safe_next(str(form.get("next") or "")), 303)


# --- who is at the browser -----------------------------------------------------------------------
async def login(request: Request) -> Response:
    if request.method == "GET":
        return page(request, "login.html", error="")
    form = await request.form()
    try:
        session.check_csrf(request, form)
    except session.CsrfRefused as exc:
        return page(request, "login.html", 403, error=str(exc))
    token, name = str(form.get("token") or ""), str(form.get("name") or "")
    # A token typed into the form is a guess like one in a header (collector/token_guesses.py).
    guesses: TokenGuesses = request.app.state.token_guesses
    address = client_address(request.scope)
    wait = guesses.retry_after(address) if request.app.state.api_auth.enabled else None
    if wait is not None:
        refused = page(request, "login.html", 429, error=too_many_guesses(wait))
        refused.headers["Retry-After"] = str(wait)
        return refused
    try:
        outcome = await asyncio.to_thread(session.sign_in, request, token, name)
    except StoreError as exc:
        return page(request, "login.html", 503, error=f"the store did not answer: {exc}")
    if isinstance(outcome, str):
        guesses.failed(address)
        return page(request, "login.html", 401, error=outcome)
    return outcome


@ui_endpoint
async def logout(request: Request) -> Response:
    session.check_csrf(request, await request.form())
    return await asyncio.to_thread(session.sign_out, request)


@ui_endpoint
async def set_reviewer(request: Request) -> Response:
    form = await request.form()
    session.check_csrf(request, form)
    return session.set_reviewer(request, str(form.get("name") or ""), str(form.get("next") or ""))
