"""`gen_ai.evaluation.result` events → `scores` rows: the scores other tools (and Assay itself)
send as OpenTelemetry, as log records or as span events, each about the span it is parented to.

- name, value, label, explanation: `gen_ai.evaluation.name`, `.score.value`, `.score.label`,
  `.explanation`. A value outside [0, 1] (a 1-5 scale), or none at all with a label that is
  no verdict, cannot be a score's value: the row keeps it in its error text, so it is counted
  and shown but never averaged. An event with `error.type` is a failed evaluation.
- passed: `assay.score.passed`, else Splunk's `gen_ai.evaluation.passed`, else a pass/fail
  label; source and direction: `assay.score.source` / `.direction` when Assay sent it,
  else `otel` and higher-is-better (the conventions say nothing of either).
- author: who sent it, `assay.score.author`, else the instrumentation scope, else the
  service. Events without a name are not scores and are left in `otel_logs` / `otel_traces`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from assay.collector.schema import LogRow, ScoreRow, ScoreSource, TraceRow
from assay.instrumentation import semconv as sc

_SOURCES = frozenset(s.value for s in ScoreSource)
_DIRECTIONS = ("higher_is_better", "lower_is_better")
_PASS_LABELS = {"pass", "passed", "true", "yes", "correct", "relevant", "thumbs_up"}
_FAIL_LABELS = {"fail", "failed", "false", "no", "incorrect", "not_relevant", "thumbs_down"}
_MAX_TEXT = 10_000


def _boolean(value: str | None) -> bool | None:
    if value is None:
        return None
    text = value.strip().lower()
    return True if text == "true" else False if text == "false" else None


def score_row(
    attributes: Mapping[str, str],
    *,
    timestamp: int,
    trace_id: str,
    span_id: str,
    scope: str,
    service: str,
) -> ScoreRow | None:
    """The score one event holds (attributes as text, as stored), or None if it names none."""
    name = (attributes.get(sc.EVALUATION_NAME) or "").strip()
    if not name:
        return None
    label = attributes.get(sc.EVALUATION_SCORE_LABEL, "")
    passed = _boolean(attributes.get(sc.SCORE_PASSED))
    if passed is None:
        passed = _boolean(attributes.get(sc.EVALUATION_PASSED_SPLUNK))
    if passed is None:
        key = label.strip().lower().replace(" ", "_").replace("-", "_")
        passed = True if key in _PASS_LABELS else False if key in _FAIL_LABELS else None
    value, error = 0.0, ""
    raw = attributes.get(sc.EVALUATION_SCORE_VALUE)
    if attributes.get(sc.ERROR_TYPE):
        message = attributes.get(sc.ERROR_MESSAGE, "")
        error = f"{attributes[sc.ERROR_TYPE]}: {message}" if message else attributes[sc.ERROR_TYPE]
        passed = None
    elif raw is not None:
        try:
            number = float(raw)
        except ValueError:
            number = math.nan
        if 0.0 <= number <= 1.0:
            value = number
        else:
            error = f"score value {raw!r} is not in [0, 1]; kept here, not as a value"
    elif passed is not None:
        value = 1.0 if passed else 0.0  # a verdict alone
    else:
        error = f"no score value, and the label {label!r} is no verdict"
    source = attributes.get(sc.SCORE_SOURCE, "")
    direction = attributes.get(sc.SCORE_DIRECTION, "")
    # Assay's own events name their author, "" included, so that a score sent both through
    # the API and as an event has one replacing key and stays one row.
    author = attributes.get(sc.SCORE_AUTHOR, "") if source else ""
    author = author if source else (attributes.get(sc.SCORE_AUTHOR) or scope or service)
    return ScoreRow(
        timestamp=timestamp,
        trace_id=trace_id,
        span_id=span_id,
        name=name[:200],
        value=value,
        label=label[:200],
        passed=passed,
        explanation=attributes.get(sc.EVALUATION_EXPLANATION, "")[:_MAX_TEXT],
        source=source if source in _SOURCES else ScoreSource.OTEL.value,
        evaluator_version=attributes.get(sc.EVALUATOR_VERSION, "")[:200],
        author=author[:200],
        experiment_id=attributes.get(sc.EXPERIMENT_ID, ""),
        dataset_item_id=attributes.get(sc.DATASET_ITEM_ID, ""),
        error=error[:_MAX_TEXT],
        direction=direction if direction in _DIRECTIONS else "higher_is_better",
    )


def _id(hex_id: str) -> str:
    """A trace or span id, "" for the all-zero (absent) one."""
    return hex_id if hex_id.strip("0") else ""


def evaluation_scores(traces: Iterable[TraceRow], logs: Iterable[LogRow]) -> list[ScoreRow]:
    """The scores of a writer batch: from its log records and its spans' events."""
    scores = []
    for record in logs:
        event = record.EventName or record.LogAttributes.get(sc.EVENT_NAME, "")
        if event == sc.EVALUATION_RESULT_EVENT:
            row = score_row(
                record.LogAttributes,
                timestamp=record.Timestamp,
                trace_id=_id(record.TraceId),
                span_id=_id(record.SpanId),
                scope=record.ScopeName,
                service=record.ServiceName,
            )
            if row is not None:
                scores.append(row)
    for span in traces:
        for at, event, attributes in zip(
            span.Events_Timestamp, span.Events_Name, span.Events_Attributes, strict=False
        ):
            if event == sc.EVALUATION_RESULT_EVENT:
                row = score_row(
                    attributes,
                    timestamp=at,
                    trace_id=span.TraceId,
                    span_id=span.SpanId,
                    scope=span.ScopeName,
                    service=span.ServiceName,
                )
                if row is not None:
                    scores.append(row)
    return scores
