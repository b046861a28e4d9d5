"""`feedback()`: an end user's 👍/👎 on a call, sent from the application to the collector.

It goes to the collector's REST API (`POST /api/feedback`) with the standard library's urllib
rather than as an OpenTelemetry log event: a grade is a request the application wants answered
(stored, or refused and why), not telemetry that may be sampled, batched or dropped; and the
collector keeps one path for grades, the one the UI uses. No extra dependency either.
"""

from __future__ import annotations

import json
import logging
import os
import re

__all__ = ["feedback"]

logger = logging.getLogger("assay.instrumentation")

URL_ENV = "ASSAY_URL"
TOKEN_ENV = "ASSAY_TOKEN"
DEFAULT_URL = "http://localhost:4318"
_TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
_SPAN_ID = re.compile(r"^[0-9a-f]{16}$")


def feedback(
    trace_or_span_id: str | int,
    value: int | bool,
    comment: str | None = None,
    *,
    author: str | None = None,
    url: str | None = None,
    token: str | None = None,
    timeout: float = 5.0,
) -> bool:
    """Record a grade of a call (a 16-hex-digit span id) or of a whole trace (32 hex digits, or
    the integer id OpenTelemetry's span context holds): `value` 1 or True for 👍, 0 or False
    for 👎. `author` names who graded (e.g. the end user's id).

    The collector is found at `url`, else `ASSAY_URL`, else http://localhost:4318, with the
    bearer `token`, else `ASSAY_TOKEN`. Returns whether the collector stored the grade; a
    collector that cannot be reached or refuses is logged, never raised: the application's
    request goes on. Arguments that cannot be a grade raise ValueError."""
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
