"""Content in OTLP requests: which attributes hold prompts, responses and documents, and masking
them in place in the receiver, so nothing unredacted reaches the spool, let alone the store.

What is redacted (with redaction on):
- on every span, the attributes every dialect declares as content (`CONTENT_KEYS` and
  `CONTENT_PREFIXES` in `normalize/dialects/*`: messages, tool calls and definitions, retrieved
  documents, embedded texts, prompt templates and their variables, metadata, ...), captured
  HTTP headers and URLs (`CREDENTIAL_KEYS`, `CREDENTIAL_PREFIXES`);
- on a span a dialect recognises as an LLM call, every attribute but those `NEVER_REDACTED`,
  so a content attribute no dialect declares yet is redacted anyway;
- span status messages and every attribute of every span event;
- log record bodies and every log record attribute.
Inside a value: every string, of arrays and key-value lists too, JSON documents value by value
(`Redactor`), and integers whose digits match (a card number sent as a number).

`NEVER_REDACTED` is derived from the dialects and the `llm_calls` columns: the attributes that
become the identifying columns (models, provider, token counts, ids, user and session, prompt
name and version, tags, ...), under every dialect's name for them. Resource and scope attributes,
span names, link and metric attributes are never redacted either: the README lists them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from functools import lru_cache
from typing import Any

from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from assay.collector.normalize.dialects import DIALECTS, is_llm_call
from assay.collector.normalize.dialects._shape import Rename
from assay.collector.normalize.llm_calls import COLUMN_ATTRIBUTES
from assay.collector.normalize.otlp import any_value
from assay.collector.redaction import Redactor
from assay.instrumentation import semconv as sc

CONTENT_KEYS: frozenset[str] = frozenset().union(*(d.CONTENT_KEYS for d in DIALECTS))
CONTENT_PREFIXES: tuple[str, ...] = tuple(p for d in DIALECTS for p in d.CONTENT_PREFIXES)

# The llm_calls columns that hold content; every other column an attribute becomes identifies
# the call (and is what dashboards group and filter by).
CONTENT_COLUMNS = frozenset(
    {sc.INPUT_MESSAGES, sc.OUTPUT_MESSAGES, sc.SYSTEM_INSTRUCTIONS, sc.TOOL_DEFINITIONS}
)
_IDENTIFYING = COLUMN_ATTRIBUTES - CONTENT_COLUMNS


def _target(rename: str | Rename) -> str:
    return rename.target if isinstance(rename, Rename) else rename


NEVER_REDACTED: frozenset[str] = _IDENTIFYING | frozenset(
    foreign
    for dialect in DIALECTS
    for foreign, target in dialect.RENAMES.items()
    if _target(target) in _IDENTIFYING
)


@lru_cache(maxsize=4096)  # bounded: attribute keys come from clients
def is_content_key(key: str) -> bool:
    """Whether an attribute holds content on any span (and so is redacted)."""
    if key in NEVER_REDACTED:
        return False
    return key in CONTENT_KEYS or key.startswith(CONTENT_PREFIXES)


# Attributes in which any span, whatever its kind, may carry a secret: the HTTP headers an
# instrumentation was told to capture (`Authorization`, `Cookie`, `X-Api-Key`, ...) and URLs,
# whose query often holds a key (`?api_key=...`). Redacted on every span, like content.
CREDENTIAL_KEYS = frozenset({"url.full", "url.query", "http.url", "http.target"})
CREDENTIAL_PREFIXES = ("http.request.header.", "http.response.header.")


@lru_cache(maxsize=4096)  # bounded: attribute keys come from clients
def is_redacted_on_every_span(key: str) -> bool:
    """Whether an attribute is redacted on any span: content, or a place for credentials."""
    if key in NEVER_REDACTED:
        return False
    return is_content_key(key) or key in CREDENTIAL_KEYS or key.startswith(CREDENTIAL_PREFIXES)


class _Attributes(Mapping[str, Any]):
    """A span's attributes as the dialects' `matches` read them: a value is read and converted
    only when asked for (they read a handful of the keys; each read through the protobuf runtime
    costs, and converting every value ~3 µs each)."""

    __slots__ = ("_pairs", "_read")

    def __init__(self, pairs: Iterable[KeyValue]) -> None:
        self._pairs = {pair.key: pair for pair in pairs}
        self._read: list[str] | None = None  # the keys whose values were read, when recording

    def __getitem__(self, key: str) -> Any:
        pair = self._pairs[key]
        if self._read is not None:
            self._read.append(key)
        return any_value(pair.value)

    def get(self, key: str, default: Any = None) -> Any:
        # Mapping's own `get` goes through __getitem__ and a KeyError for every absent name
        pair = self._pairs.get(key)
        if pair is None:
            return default
        if self._read is not None:
            self._read.append(key)
        return any_value(pair.value)

    def __contains__(self, key: object) -> bool:
        return key in self._pairs

    def __iter__(self) -> Iterator[str]:
        return iter(self._pairs)

    def __len__(self) -> int:
        return len(self._pairs)


# `is_llm_call`'s answers by the names of a span's attributes, in their order (a service sends
# spans of a few shapes), each with the values the dialects read to give it: what a mapping
# shows but for its values is in the names, so a span of the same names whose values of those
# keys are the same gets the same answer from the same (deterministic) tests. A web service's
# span thus costs one lookup instead of every dialect's test (OpenLLMetry's joins every name).
_LLM_BY_NAMES: dict[tuple[str, ...], list[tuple[bool, tuple[tuple[str, AnyValue], ...]]]] = {}
_MAX_NAME_SETS = 1024  # bounded: attribute keys come from clients
_MAX_ANSWERS = 8  # per set of names


def _is_llm(attrs: _Attributes, names: tuple[str, ...] | None = None) -> bool:
    """`is_llm_call(attrs)`, remembered; `names` are the attributes' names in their order."""
    pairs = attrs._pairs
    names = tuple(pairs) if names is None else names
    answers = _LLM_BY_NAMES.get(names)
    if answers is not None:
        for answer, read in answers:
            for key, value in read:
                if pairs[key].value != value:
                    break
            else:
                return answer
    attrs._read = []
    try:
        answer = is_llm_call(attrs)
        read_keys = dict.fromkeys(attrs._read)
    finally:
        attrs._read = None
    if answers is None:
        if len(_LLM_BY_NAMES) >= _MAX_NAME_SETS:
            return answer
        answers = _LLM_BY_NAMES[names] = []
    if len(answers) < _MAX_ANSWERS:
        # copies: the request's own values are redacted in place right after
        read = tuple((key, _copy(pairs[key].value)) for key in read_keys)
        answers.append((answer, read))
    return answer


def is_llm_call_span(span: Span) -> bool:
    """Whether normalize will make `span` an LLM call (`is_llm_call`), from its protobuf
    attributes, remembered by their names."""
    return _is_llm(_Attributes(span.attributes))


@lru_cache(maxsize=2048)  # bounded: attribute keys come from clients
def _redacted_names(names: tuple[str, ...], llm: bool) -> tuple[str, ...]:
    """Which of a span's attributes are redacted, by their names: on an LLM call every one but
    those never redacted, on any other span those that hold content."""
    return tuple(
        key
        for key in names
        if key not in NEVER_REDACTED and (llm or is_redacted_on_every_span(key))
    )


def _copy(value: AnyValue) -> AnyValue:
    copy = AnyValue()
    copy.CopyFrom(value)
    return copy


def redact_value(value: AnyValue, redactor: Redactor) -> bool:
    """Redact an attribute value in place; whether anything changed."""
    text = value.string_value
    if text:  # a string that is not empty (one field of a oneof is set): most values
        redacted = redactor.redact(text)
        if redacted == text:
            return False
        value.string_value = redacted
        return True
    kind = value.WhichOneof("value")
    if kind in ("int_value", "double_value"):
        masked = redactor.redact_number(getattr(value, kind))
        if masked is None:
            return False
        value.string_value = masked  # a oneof: the number is replaced by its mask
        return True
    changed = False
    if kind == "array_value":
        for item in value.array_value.values:
            changed |= redact_value(item, redactor)
    elif kind == "kvlist_value":
        for pair in value.kvlist_value.values:
            changed |= redact_value(pair.value, redactor)
            key = redactor.redact(pair.key)
            if key != pair.key:
                pair.key, changed = key, True
    return changed


def _redact_traces(request: ExportTraceServiceRequest, redactor: Redactor) -> bool:
    changed = False
    for resource_spans in request.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                # Slices: iterating a repeated field ends by raising (and catching) IndexError,
                # which costs more than the slice (most spans have no events).
                pairs = span.attributes[:]
                attrs = _Attributes(pairs)
                found = attrs._pairs
                names = tuple(found)
                llm = _is_llm(attrs, names)
                # Read through the protobuf runtime once (~1 µs an attribute), unless a key
                # repeats: then the dict holds only the last of its pairs, and every one counts.
                if len(found) == len(pairs):
                    for key in _redacted_names(names, llm):
                        changed |= redact_value(found[key].value, redactor)
                else:
                    for pair in pairs:
                        # (is_redacted_on_every_span is False for every never-redacted key)
                        key = pair.key
                        if key not in NEVER_REDACTED and (llm or is_redacted_on_every_span(key)):
                            changed |= redact_value(pair.value, redactor)
                message = span.status.message
                if message:
                    redacted = redactor.redact(message)
                    if redacted != message:
                        span.status.message, changed = redacted, True
                for event in span.events[:]:
                    for pair in event.attributes:
                        changed |= redact_value(pair.value, redactor)
    return changed


def _redact_logs(request: ExportLogsServiceRequest, redactor: Redactor) -> bool:
    changed = False
    for resource_logs in request.resource_logs:
        for scope_logs in resource_logs.scope_logs:
            for record in scope_logs.log_records:
                if record.HasField("body"):
                    changed |= redact_value(record.body, redactor)
                for pair in record.attributes:
                    changed |= redact_value(pair.value, redactor)
    return changed


def redact_request(request: Message, redactor: Redactor) -> bool:
    """Mask content in a trace or logs request, in place (metrics carry none); whether anything
    changed, so the receiver knows to encode the request again."""
    if isinstance(request, ExportTraceServiceRequest):
        return _redact_traces(request, redactor)
    if isinstance(request, ExportLogsServiceRequest):
        return _redact_logs(request, redactor)
    return False
