"""`feedback()`: an end user's 👍/👎 on a call, sent from the application to the collector.

By default it goes to the collector's REST API (`POST /api/feedback`) with the standard
library's urllib: a grade is a request the application wants answered (stored, or refused and
why), not telemetry that may be batched or dropped. `transport="otel"` sends it instead as a
`gen_ai.evaluation.result` log record over OTLP, the conventions' form, for a backend that is
not an Assay collector (or several at once through an OpenTelemetry Collector).
"""

from __future__ import annotations

import json
import logging
import os
import re
from typing import Any

__all__ = ["feedback"]

logger = logging.getLogger("assay.instrumentation")

URL_ENV = "ASSAY_URL"
TOKEN_ENV = "ASSAY_TOKEN"
DEFAULT_URL = "http://localhost:4318"
_TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
_SPAN_ID = re.compile(r"^[0-9a-f]{16}$")


def feedback(
    trace_or_span_id: str | int | Any,
    value: int | bool,
    comment: str | None = None,
    *,
    author: str | None = None,
    url: str | None = None,
    token: str | None = None,
    timeout: float = 5.0,
    transport: str = "api",
) -> bool:
    """Record a grade of a call (a 16-hex-digit span id) or of a whole trace (32 hex digits, or
    the integer id OpenTelemetry's span context holds): `value` 1 or True for 👍, 0 or False
    for 👎. `author` names who graded (e.g. the end user's id).

    The collector is found at `url`, else `ASSAY_URL`, else http://localhost:4318, with the
    bearer `token`, else `ASSAY_TOKEN`. Returns whether the collector stored the grade; a
    collector that cannot be reached or refuses is logged, never raised: the application's
    request goes on. Arguments that cannot be a grade raise ValueError.

    `transport="otel"` sends the grade as a `gen_ai.evaluation.result` log record (name
    `feedback`) to the OTLP endpoint of the environment (`OTEL_EXPORTER_OTLP_ENDPOINT`), else
    to `url`; the target may then also be a span's `SpanContext` (both ids). Returns whether
    the record was exported."""
    if transport == "otel":
        return _emit(trace_or_span_id, value, comment, author, url, timeout)
    if transport != "api":
        raise ValueError(f"feedback: transport is 'api' or 'otel', not {transport!r}")
    import urllib.error  # here, not at the top: importing the package stays cheap
    import urllib.request

    body = _body(trace_or_span_id, value, comment, author)
    base = (url or os.environ.get(URL_ENV) or DEFAULT_URL).rstrip("/")
    token = token if token is not None else os.environ.get(TOKEN_ENV)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(
        f"{base}/api/feedback", data=json.dumps(body).encode(), headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return bool(200 <= response.status < 300)
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace")[:300]
        logger.warning("Assay feedback was refused (%s): %s", exc.code, detail)
    except (OSError, ValueError) as exc:
        logger.warning("Assay feedback could not reach the collector at %s: %s", base, exc)
    return False


_events: Any = None  # the OTLP log pipeline of transport="otel", made on first use


def _emit(
    target: Any,
    value: int | bool,
    comment: str | None,
    author: str | None,
    url: str | None,
    timeout: float,
) -> bool:
    global _events
    from assay.instrumentation import semconv as sc
    from assay.instrumentation.evaluation_events import (
        EvaluationEvents,
        evaluation_result_attributes,
    )

    if hasattr(target, "trace_id") and hasattr(target, "span_id"):  # a SpanContext
        trace_id, span_id = f"{target.trace_id:032x}", f"{target.span_id:016x}"
        body: dict[str, object] = _body(span_id, value, comment, author)
    else:
        body = _body(target, value, comment, author)
        trace_id, span_id = str(body.get("trace_id", "")), str(body.get("span_id", ""))
    attributes = evaluation_result_attributes(
        sc.FEEDBACK_NAME,
        float(body["value"]),  # type: ignore[arg-type]
        label="thumbs_up" if body["value"] else "thumbs_down",
        explanation=str(body.get("comment", "")),
        passed=bool(body["value"]),
        source=sc.ScoreSource.HUMAN.value,
        author=str(body.get("author", "anonymous")),
    )
    try:
        if _events is None:
            _events = EvaluationEvents(url or os.environ.get(URL_ENV) or DEFAULT_URL)
        _events.emit(trace_id, span_id, attributes)
        return bool(_events.flush(timeout))
    except Exception as exc:  # never the application's problem
        logger.warning("Assay feedback could not be sent as an OTLP event: %s", exc)
        return False


def _body(
    target: str | int, value: int | bool, comment: str | None, author: str | None
) -> dict[str, object]:
    if isinstance(target, int) and not isinstance(target, bool):
        target = f"{target:032x}"  # a trace id from SpanContext.trace_id
    if not isinstance(target, str):
        raise ValueError("feedback: give a trace id or a span id")
    target = target.strip().lower()
    if _TRACE_ID.match(target):
        body: dict[str, object] = {"trace_id": target}
    elif _SPAN_ID.match(target):
        body = {"span_id": target}
    else:
        raise ValueError(
            f"feedback: {target!r} is neither a trace id (32 hex digits) nor a span id (16)"
        )
    if value not in (0, 1):
        raise ValueError("feedback: value must be 1 (👍) or 0 (👎)")
    body["value"] = int(value)
    if comment:
        body["comment"] = comment
    if author:
        body["author"] = author
    return body
