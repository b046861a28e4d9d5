"""A person's 👍/👎 on a call (or a whole trace), checked and stored as a human score.

The UI's grading forms and `POST /api/feedback` (where the application's
`assay.instrumentation.feedback()` lands) both store through `record_feedback`. A grade is one
`scores` row with source `human` and name `feedback`; the table replaces rows by (source, name,
trace, span, author, ...) keeping the latest timestamp, so a person who changes their mind
replaces their earlier grade rather than adding a second one."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

from assay.collector.schema import FEEDBACK_NAME, ScoreRow, ScoreSource
from assay.collector.store.base import Store

DEFAULT_AUTHOR = "anonymous"
MAX_COMMENT_CHARS = 10_000
MAX_AUTHOR_CHARS = 200
_HEX_ID = re.compile(r"^[0-9a-f]+$")


@dataclass(frozen=True)
class Feedback:
    """One grade, checked: a target (span, or trace alone), 1 for 👍 and 0 for 👎."""

    trace_id: str
    span_id: str
    value: int
    comment: str
    author: str

    @classmethod
    def parse(cls, body: Any) -> Feedback:
        """From a decoded JSON object or form; ValueError says what is wrong."""
        if not isinstance(body, dict):
            raise ValueError("send a JSON object")
        trace_id = _hex_id(body.get("trace_id"), "trace_id", 32)
        span_id = _hex_id(body.get("span_id"), "span_id", 16)
        if not trace_id and not span_id:
            raise ValueError("give span_id or trace_id: which call (or trace) is graded")
        value = body.get("value")
        if isinstance(value, str) and value.strip() in ("0", "1"):
            value = int(value)
        if isinstance(value, bool) or value not in (0, 1):
            raise ValueError("value must be 1 (👍) or 0 (👎)")
        comment = body.get("comment") or ""
        author = body.get("author") or DEFAULT_AUTHOR
        if not isinstance(comment, str) or not isinstance(author, str):
            raise ValueError("comment and author must be strings")
        if len(comment) > MAX_COMMENT_CHARS:
            raise ValueError(f"comment is over {MAX_COMMENT_CHARS} characters")
        if len(author.strip()) > MAX_AUTHOR_CHARS:
            raise ValueError(f"author is over {MAX_AUTHOR_CHARS} characters")
        return cls(trace_id, span_id, int(value), comment.strip(), author.strip())


def _hex_id(value: Any, name: str, length: int) -> str:
    if value in (None, ""):
        return ""
    if not isinstance(value, str) or len(value) != length or not _HEX_ID.match(value.lower()):
        raise ValueError(f"{name} must be {length} hexadecimal characters")
    return value.lower()


def trace_of_span(store: Store, span_id: str) -> str:
    """The trace a stored span belongs to, or "" when it is not stored (yet)."""
    for sql in (
        f"SELECT trace_id FROM {store.database}.llm_calls WHERE span_id = {{s:String}} LIMIT 1",
        f"SELECT TraceId FROM {store.database}.otel_traces WHERE SpanId = {{s:String}} LIMIT 1",
    ):
        _, rows = store.query(sql, {"s": span_id})
        if rows:
            return str(rows[0][0])
    return ""


def _earlier_grade_trace(store: Store, span_id: str, author: str) -> str | None:
    """The trace id this author's earlier grade of the span was stored with, None without one."""
    _, rows = store.query(
        f"SELECT trace_id FROM {store.database}.scores WHERE source = {{source:String}}"
        " AND name = {name:String} AND span_id = {s:String} AND author = {a:String}"
        " ORDER BY timestamp DESC LIMIT 1",
        {"source": ScoreSource.HUMAN.value, "name": FEEDBACK_NAME, "s": span_id, "a": author},
    )
    return str(rows[0][0]) if rows else None


def record_feedback(store: Store, feedback: Feedback) -> ScoreRow:
    """Store the grade; the span's trace is looked up so the row's replacing key is the same
    whichever of the two ids the grader gave. A grade sent before its call was stored kept an
    empty trace id: the same person's later grades of that span keep it too (given the trace
    or not), so that they replace it rather than stand beside it."""
    trace_id = feedback.trace_id
    if feedback.span_id:
        earlier = _earlier_grade_trace(store, feedback.span_id, feedback.author)
        if earlier is not None:
            trace_id = earlier
        elif not trace_id:
            trace_id = trace_of_span(store, feedback.span_id)
    row = ScoreRow(
        timestamp=time.time_ns(),
        trace_id=trace_id,
        span_id=feedback.span_id,
        name=FEEDBACK_NAME,
        value=float(feedback.value),
        label="thumbs_up" if feedback.value else "thumbs_down",
        passed=bool(feedback.value),
        explanation=feedback.comment,
        source=ScoreSource.HUMAN.value,
        author=feedback.author,
    )
    store.insert_rows([row])
    return row
