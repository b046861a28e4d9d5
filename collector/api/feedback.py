"""`POST /api/feedback`: a person's 👍/👎 on a call (or a whole trace), stored as a human score.

The UI's grading forms and the application's `assay.instrumentation.feedback()` both end here.
A grade is one `scores` row with source `human` and name `feedback`; the table replaces rows
by (source, name, trace, span, author, ...) keeping the latest timestamp, so a person who
changes their mind replaces their earlier grade rather than adding a second one."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response

from assay.collector.api.bodies import BadBody, json_body
from assay.collector.api.encoding import error_response, json_response
from assay.collector.records.feedback import Feedback, record_feedback
from assay.collector.store.base import StoreError


async def feedback_endpoint(request: Request) -> Response:
    try:
        feedback = Feedback.parse(await json_body(request))
    except BadBody as exc:
        return error_response(str(exc), exc.status)
    except ValueError as exc:
        return error_response(str(exc))
    try:
        row = await asyncio.to_thread(record_feedback, request.app.state.store, feedback)
    except StoreError as exc:
        return error_response(f"could not store the feedback: {exc}", 503)
    return json_response(
        {
            "stored": True,
            "trace_id": row.trace_id,
            "span_id": row.span_id,
            "value": feedback.value,
            "author": row.author,
        }
    )
