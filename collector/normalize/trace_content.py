"""An LLM call's content stored once: in its `llm_calls` row, with a preview in `otel_traces`.

A span that becomes an `llm_calls` row carries its prompt and response as attributes
(`gen_ai.input.messages`, OpenLLMetry's `gen_ai.prompt.N.content`, OpenInference's
`llm.input_messages.N.message.content`, ...), and the row holds the same text again. Storing both
in full doubled the bytes of content and the engine's work on them (about half of the
`otel_traces` insert, docs/capacity.md). So, once a writer batch's calls are final (stacked calls
folded, log messages attached), each of the span's attributes longer than `PREVIEW_CHARS` whose
exact text the row holds becomes a preview in `otel_traces`: its first `PREVIEW_CHARS`
characters and `…`. One attribute, `assay.content.location`, says where each full text is, as
JSON `{attribute: location}`:

- `llm_calls.input_messages` (or `output_messages`, `system_instructions`, `tool_definitions`):
  the column is the attribute's text, character for character;
- `llm_calls.input_messages#/0/parts/0/content`: a string inside the column's JSON, by JSON
  Pointer (RFC 6901), for dialects whose messages the normalizer assembled from indexed
  attributes;
- `llm_calls.attributes`: the row's `attributes` map under the same name.

Only what is found there exactly is shortened; everything else (the raw request of
OpenInference's `input.value`, which the row holds only parsed; events; a span whose call was
folded into another span's row) stays in full. The trace view of the Assay UI puts the full
text back (`restore_content`); Grafana's trace view shows the preview and the location.
`trace_content: full` keeps the full text in both tables, as before."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from typing import Any

from assay.collector.schema import LlmCallRow, TraceRow
from assay.instrumentation import semconv as sc

PREVIEW_CHARS = 256
ELLIPSIS = "…"
TABLE = "llm_calls"
# The row's content columns, each of which may be an attribute's text whole (genai dialect).
COLUMNS = ("input_messages", "output_messages", "system_instructions", "tool_definitions")
ATTRIBUTES = "attributes"
_WHOLE_COLUMNS = tuple((column, f"{TABLE}.{column}") for column in COLUMNS)
_COMPACT_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def shorten_content(traces: Iterable[TraceRow], calls: Iterable[LlmCallRow]) -> None:
    """In place: each `otel_traces` row of a span with an `llm_calls` row keeps a preview of the
    long attributes the row holds exactly, and says where they are."""
    by_span = {(call.trace_id, call.span_id): call for call in calls}
    if not by_span:
        return
    for row in traces:
        call = by_span.get((row.TraceId, row.SpanId))
        if call is None:
            continue
        attrs = row.SpanAttributes
        long = [(key, value) for key, value in attrs.items() if len(value) > PREVIEW_CHARS]
        if not long:
            continue
        located: list[tuple[str, str]] = []
        strings: dict[str, dict[str, str]] = {}  # each column's long strings, when first needed
        for key, value in long:
            where = _location(key, value, call, strings)
            if where is not None:
                located.append((key, where))
        if located:
            for key, _ in located:
                attrs[key] = preview(attrs[key])
            attrs[sc.CONTENT_LOCATION] = (
                _location_text(tuple(located))
                if len(located) <= _REMEMBERED
                else _COMPACT_JSON.encode(dict(located))
            )


_REMEMBERED = 8  # the usual sets are a few names; a span with many is not worth remembering


@functools.lru_cache(maxsize=1024)  # each dialect's usual names, and where
def _location_text(located: tuple[tuple[str, str], ...]) -> str:
    return _COMPACT_JSON.encode(dict(located))


def preview(text: str) -> str:
    return text[:PREVIEW_CHARS] + ELLIPSIS


def _location(
    key: str, value: str, call: LlmCallRow, strings: dict[str, dict[str, str]]
) -> str | None:
    for column, where in _WHOLE_COLUMNS:
        if getattr(call, column) == value:  # the same object, nearly always: found at once
            return where
    if call.attributes.get(key) == value:
        return f"{TABLE}.{ATTRIBUTES}"
    for column in COLUMNS:
        text = getattr(call, column)
        if len(text) <= len(value):  # holds no string as long as the value
            continue
        if column not in strings:
            strings[column] = _long_strings(text)
        pointer = strings[column].get(value)
        if pointer is not None:
            return f"{TABLE}.{column}#{pointer}"
    return None


def _long_strings(text: str) -> dict[str, str]:
    """The strings longer than a preview in a column's JSON, each with the JSON Pointer of its
    first place: found in one walk, whatever the number of attributes looked up (a span may
    carry thousands)."""
    try:
        root = json.loads(text)
    except (ValueError, RecursionError):
        return {}
    found: dict[str, str] = {}
    stack: list[tuple[Any, str]] = [(root, "")]
    while stack:  # depth first, in document order; no recursion, however deep the JSON
        node, path = stack.pop()
        if node.__class__ is str:
            if len(node) > PREVIEW_CHARS:
                found.setdefault(node, path)
        elif isinstance(node, dict):
            stack.extend(
                (child, f"{path}/{_token(name)}") for name, child in reversed(node.items())
            )
        elif isinstance(node, list):
            stack.extend((node[i], f"{path}/{i}") for i in range(len(node) - 1, -1, -1))
    return found


def _token(name: str) -> str:
    return name.replace("~", "~0").replace("/", "~1")


def locations(attributes: Mapping[str, str]) -> dict[str, str]:
    """`{attribute: location}` of an `otel_traces` row's shortened attributes ({} for none)."""
    text = attributes.get(sc.CONTENT_LOCATION)
    if not text:
        return {}
    try:
        found = json.loads(text)
    except ValueError:
        return {}
    if not isinstance(found, dict):
        return {}
    return {str(k): v for k, v in found.items() if isinstance(v, str)}


def columns_needed(attributes: Mapping[str, str]) -> set[str]:
    """The `llm_calls` columns that `restore_content` needs for this row's attributes."""
    return {_split(where)[0] for where in locations(attributes).values()} - {""}


def restore_content(attributes: Mapping[str, str], call: Mapping[str, Any]) -> dict[str, str]:
    """The attributes as the span carried them: each preview replaced by its full text from the
    `llm_calls` row's columns (`call`, by name). What cannot be found (the call's content
    expired, its row not stored) stays a preview, and the location stays with it."""
    where_of = locations(attributes)
    if not where_of:
        return dict(attributes)
    out = dict(attributes)
    left = {}
    for key, where in where_of.items():
        full = _resolve(key, where, call)
        current = out.get(key)
        if full is not None and current is not None and current == preview(full):
            out[key] = full
        else:
            left[key] = where
    if left:
        out[sc.CONTENT_LOCATION] = _COMPACT_JSON.encode(left)
    else:
        del out[sc.CONTENT_LOCATION]
    return out


def _split(where: str) -> tuple[str, str]:
    table, _, rest = where.partition(".")
    if table != TABLE:
        return "", ""
    column, _, pointer = rest.partition("#")
    return (column, pointer) if column in (*COLUMNS, ATTRIBUTES) else ("", "")


def _resolve(key: str, where: str, call: Mapping[str, Any]) -> str | None:
    column, pointer = _split(where)
    value = call.get(column)
    if column == ATTRIBUTES:
        return value.get(key) if isinstance(value, Mapping) else None
    if not isinstance(value, str) or not value:
        return None
    if not pointer:
        return value
    try:
        node: Any = json.loads(value)
    except (ValueError, RecursionError):
        return None
    for token in pointer.split("/")[1:]:
        name = token.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and name in node:
            node = node[name]
        elif isinstance(node, list) and name.isdigit() and int(name) < len(node):
            node = node[int(name)]
        else:
            return None
    return node if isinstance(node, str) else None
