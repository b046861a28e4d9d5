"""Every GenAI span dialect the collector reads, each a table-driven mapping onto the current
OpenTelemetry GenAI attribute names, from which one `llm_calls` row is built.

The first dialect that recognises a span translates it: the most specific marks first
(`openinference.span.kind`, OpenLLMetry's and OpenLIT's own names), the current conventions
last. A span none recognises is not an LLM call and stays in `otel_traces` only. Messages carried
by GenAI events (on the span, or log records correlated to it) fill what the attributes lack,
whatever the dialect."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from assay.collector.normalize.dialects import genai, openinference, openlit, openllmetry
from assay.collector.normalize.dialects.genai import EVENT_NAMES, GenAIEvent, message_attributes

__all__ = [
    "EVENT_NAMES",
    "CallAttributes",
    "GenAIEvent",
    "call_attributes",
    "is_llm_call",
    "message_attributes",
]

# Tried in this order; the current conventions (`genai`) come last, as the fallback.
DIALECTS = (openinference, openllmetry, openlit, genai)
# Whether any dialect recognises a span does not depend on the order they are asked in: the
# current conventions first, the cheapest test and the most common answer (OpenLLMetry's scans
# every key).
_CHEAPEST_FIRST = sorted(DIALECTS, key=lambda dialect: dialect is not genai)


class CallAttributes(NamedTuple):
    dialect: str
    attributes: dict[str, Any]  # GenAI names for what maps to a column, the rest as they came


def is_llm_call(attrs: Mapping[str, Any]) -> bool:
    """Whether a span of these attributes is an LLM call: `call_attributes` gives it an
    `llm_calls` row exactly then (a dialect recognises it). The receivers ask before the row is
    made: which content to redact, how long the store keeps the span."""
    return any(dialect.matches(attrs) for dialect in _CHEAPEST_FIRST)


def call_attributes(
    attrs: Mapping[str, Any], events: Iterable[GenAIEvent] = ()
) -> CallAttributes | None:
    """The span's attributes in the GenAI conventions' names, or None when it is no LLM call."""
    events = list(events)
    for dialect in DIALECTS:
        if dialect.matches(attrs):
            translated = dialect.translate(attrs, events)
            if events:  # most spans have none
                translated = genai.with_event_messages(translated, events)
            return CallAttributes(dialect.NAME, translated)
    return None
