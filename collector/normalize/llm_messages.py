"""GenAI log records (messages an instrumentation sends over OTLP logs) → the messages of the
`llm_calls` row of their span.

ClickHouse rows are not updated in place, and a span and its log records travel separately (two
SDK exporters, two requests, often two spool segments). So the correlation is done in two
places:

- at insert, within one writer batch (a spool segment): a record whose span id matches an
  `llm_calls` row of the same batch fills that row's empty message columns before the insert;
- at read, for the rest: records without their span in the batch are written to
  `llm_call_messages` (keyed by span id, ReplacingMergeTree), and the view
  `llm_calls_with_messages` joins them back onto `llm_calls` where a row has no messages.

Re-inserting the whole `llm_calls` row when its messages come later (ReplacingMergeTree on the
span id) would need the row, i.e. a read of the store on the write path, and would race with the
span's own insert; the side table needs neither."""

from __future__ import annotations

from collections.abc import Iterable

from assay.collector.normalize.dialects import EVENT_NAMES, GenAIEvent, message_attributes
from assay.collector.normalize.llm_calls import json_text
from assay.collector.schema import LlmCallRow, LlmMessagesRow, LogRow
from assay.instrumentation import semconv as sc

_COLUMNS = {
    sc.INPUT_MESSAGES: "input_messages",
    sc.OUTPUT_MESSAGES: "output_messages",
    sc.SYSTEM_INSTRUCTIONS: "system_instructions",
}


def _event_name(record: LogRow) -> str:
    return record.EventName or record.LogAttributes.get(sc.EVENT_NAME, "")


def attach_log_messages(calls: list[LlmCallRow], logs: Iterable[LogRow]) -> list[LlmMessagesRow]:
    """Fill the calls' missing messages from the GenAI log records of the same batch; return
    rows for `llm_call_messages` for the records whose span is not in it."""
    by_span: dict[str, list[LogRow]] = {}
    for record in logs:
        if record.SpanId and _event_name(record) in EVENT_NAMES:
            by_span.setdefault(record.SpanId, []).append(record)
    if not by_span:
        return []
    for call in calls:
        records = by_span.pop(call.span_id, None)
        if records is not None:
            for key, text in _message_columns(records).items():
                if not getattr(call, key):
                    setattr(call, key, text)
    leftovers = []
    for span_id, records in by_span.items():
        columns = _message_columns(records)
        if columns:
            first = records[0]
            leftovers.append(
                LlmMessagesRow(
                    timestamp=first.Timestamp,
                    trace_id=first.TraceId,
                    span_id=span_id,
                    service_name=first.ServiceName,
                    **columns,
                )
            )
    return leftovers


def _message_columns(records: list[LogRow]) -> dict[str, str]:
    events = [GenAIEvent(_event_name(r), r.LogAttributes, r.Body or None) for r in records]
    found = message_attributes(events)
    return {_COLUMNS[key]: json_text(value) for key, value in found.items() if value}
