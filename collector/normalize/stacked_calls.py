"""One LLM call, one `llm_calls` row, when instrumentations stack.

A client library's own tracing (the `anthropic` SDK traces every API call) beside an
instrumentation of the same client (OpenLLMetry's, Assay's) makes two GenAI spans for one call:
nested, or, when the library starts its span outside the current context, in another trace.
Within a writer batch, the inner of two such spans is folded into the outer one: the outer row
keeps its values and takes the inner's where it has none, and the inner gets no row of its own
(both spans stay in `otel_traces`).

Two GenAI spans are one call when one lies within the other in time, they name the same request
model, and either the one is the other's parent (with response ids that do not disagree) or
they carry the same response id from the same provider (a provider's ids are unique per call)."""

from __future__ import annotations

from dataclasses import fields
from operator import attrgetter

from assay.collector.schema import LlmCallRow

_KEEP = frozenset({"timestamp", "trace_id", "span_id", "parent_span_id", "dialect", "duration_ms"})
_EMPTY: tuple[object, ...] = (None, "", [], {})
_START = attrgetter("timestamp")


def _end(call: LlmCallRow) -> int:
    return call.timestamp + round(call.duration_ms * 1e6)


def _within(inner: LlmCallRow, outer: LlmCallRow) -> bool:
    return outer.timestamp <= inner.timestamp and _end(inner) <= _end(outer)


def _same_call(outer: LlmCallRow, inner: LlmCallRow) -> bool:
    if outer is inner or outer.request_model != inner.request_model or not _within(inner, outer):
        return False
    if inner.parent_span_id == outer.span_id and inner.trace_id == outer.trace_id:
        return (
            not outer.response_id or not inner.response_id or outer.response_id == inner.response_id
        )
    return bool(inner.response_id) and (inner.response_id, inner.provider) == (
        outer.response_id,
        outer.provider,
    )


def _fold(outer: LlmCallRow, inner: LlmCallRow) -> None:
    for f in fields(LlmCallRow):
        if f.name in _KEEP:
            continue
        if getattr(outer, f.name) in _EMPTY and getattr(inner, f.name) not in _EMPTY:
            setattr(outer, f.name, getattr(inner, f.name))
    outer.attributes = {**inner.attributes, **outer.attributes}


def merge_stacked_calls(calls: list[LlmCallRow]) -> list[LlmCallRow]:
    """`calls` without the rows of GenAI spans that describe a call another row already has."""
    if len(calls) < 2:
        return calls
    by_span = {call.span_id: call for call in calls}
    by_response: dict[tuple[str, str], list[LlmCallRow]] = {}
    for call in calls:
        if call.response_id:
            by_response.setdefault((call.response_id, call.provider), []).append(call)
    folded: set[str] = set()
    # Innermost first (latest start), so a chain of three ends in its outermost row (a stable
    # sort, reversed: equal starts keep their order, as by the key `-timestamp`).
    for inner in sorted(calls, key=_START, reverse=True):
        candidates = [by_span.get(inner.parent_span_id)]
        if inner.response_id:  # each row is among its own response's: not asked about itself
            candidates += by_response[inner.response_id, inner.provider]
        for outer in candidates:
            if (
                outer is not None
                and outer is not inner
                and outer.span_id not in folded
                and _same_call(outer, inner)
            ):
                _fold(outer, inner)
                folded.add(inner.span_id)
                break
    return [call for call in calls if call.span_id not in folded] if folded else calls
