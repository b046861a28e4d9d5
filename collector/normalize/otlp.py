"""Decoding OTLP requests (protobuf and JSON) and reading their attribute values."""

from __future__ import annotations

import base64
import binascii
import json
from json.encoder import encode_basestring
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from assay.collector.normalize.utf8 import parse_mending_utf8

SIGNALS: dict[str, type[Message]] = {
    "traces": ExportTraceServiceRequest,
    "logs": ExportLogsServiceRequest,
    "metrics": ExportMetricsServiceRequest,
}


class InvalidRequest(ValueError):
    """The request is not valid OTLP; the message says what is wrong."""


def read_protobuf(signal: str, body: bytes) -> tuple[Message, int]:
    """The request, and how many of its strings were not UTF-8 and were mended (`utf8.py`);
    raises InvalidRequest when it is malformed otherwise."""
    request = SIGNALS[signal]()
    try:
        request.ParseFromString(body)
    except (DecodeError, ValueError, RuntimeError) as exc:
        try:
            return parse_mending_utf8(SIGNALS[signal], body)
        except (DecodeError, ValueError, RuntimeError):
            raise InvalidRequest(f"malformed OTLP protobuf for {signal}: {exc}") from exc
    return request, 0


def decode_protobuf(signal: str, body: bytes) -> Message:
    return read_protobuf(signal, body)[0]


# OTLP/JSON differs from protobuf's JSON mapping in one way: trace and span ids are hex, not base64.
_ID_FIELDS = ("traceId", "spanId", "parentSpanId")
_CONTAINERS = {
    "traces": ("resourceSpans", "scopeSpans", "spans"),
    "logs": ("resourceLogs", "scopeLogs", "logRecords"),
    "metrics": ("resourceMetrics", "scopeMetrics", "metrics"),
}
_POINT_KINDS = ("sum", "gauge", "histogram", "exponentialHistogram", "summary")


def _hex_ids_to_base64(record: dict[str, Any]) -> None:
    for field in _ID_FIELDS:
        value = record.get(field)
        if isinstance(value, str) and value:
            try:
                record[field] = base64.b64encode(bytes.fromhex(value)).decode()
            except ValueError as exc:
                raise InvalidRequest(f"{field} {value[:40]!r} is not hex") from exc
    for link in record.get("links") or ():
        if isinstance(link, dict):
            _hex_ids_to_base64(link)


def decode_json(signal: str, body: bytes) -> Message:
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise InvalidRequest(f"invalid JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise InvalidRequest("an OTLP/JSON request must be a JSON object")
    outer, middle, inner = _CONTAINERS[signal]
    try:
        for resource in document.get(outer) or ():
            for scope in resource.get(middle) or ():
                for record in scope.get(inner) or ():
                    if signal != "metrics":
                        _hex_ids_to_base64(record)
                        continue
                    # Metrics carry trace and span ids only in their points' exemplars.
                    for kind in _POINT_KINDS:
                        for point in (record.get(kind) or {}).get("dataPoints") or ():
                            for exemplar in point.get("exemplars") or ():
                                _hex_ids_to_base64(exemplar)
        request = SIGNALS[signal]()
        json_format.ParseDict(document, request, ignore_unknown_fields=True)
    except InvalidRequest:
        raise
    except (
        json_format.ParseError,
        AttributeError,
        TypeError,
        ValueError,
        RecursionError,
        binascii.Error,
    ) as exc:
        raise InvalidRequest(f"not an OTLP/JSON {signal} request: {exc}") from exc
    return request


def _points(metric: Any) -> int:
    kind = metric.WhichOneof("data")
    return len(getattr(metric, kind).data_points) if kind else 0


def count_items(request: Message) -> int:
    """Spans in a trace request, log records in a logs request, data points in a metrics one."""
    if isinstance(request, ExportTraceServiceRequest):
        return sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
    if isinstance(request, ExportLogsServiceRequest):
        return sum(len(sl.log_records) for rl in request.resource_logs for sl in rl.scope_logs)
    if isinstance(request, ExportMetricsServiceRequest):
        return sum(
            _points(metric)
            for rm in request.resource_metrics
            for sm in rm.scope_metrics
            for metric in sm.metrics
        )
    raise TypeError(f"not an OTLP export request: {type(request).__name__}")


def any_value(value: AnyValue) -> Any:
    """An OTLP AnyValue as a plain Python value."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "int_value":
        return value.int_value
    if kind == "double_value":
        return value.double_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in value.kvlist_value.values}
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return None


_SCALARS = frozenset({"string_value", "int_value", "double_value", "bool_value"})


def attributes(pairs: Any) -> dict[str, Any]:
    """A repeated KeyValue field as a dict of plain values."""
    # `any_value`, its scalars inline: the collector reads every attribute of every span here.
    out: dict[str, Any] = {}
    for kv in pairs:
        value = kv.value
        kind = value.WhichOneof("value")
        out[kv.key] = getattr(value, kind) if kind in _SCALARS else any_value(value)
    return out


def attributes_and_text(pairs: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """`attributes(pairs)` and its `text_map`, in one pass over the pairs (a string, most values,
    is the same object in both)."""
    values: dict[str, Any] = {}
    texts: dict[str, str] = {}
    # Each read through the protobuf runtime costs: a field (600 instructions) less than asking
    # the oneof (1,500), so the usual kinds are tried by their fields, the oneof asked last. A
    # repeated field is iterated as a slice: its own iteration ends by raising IndexError (2,500).
    for kv in pairs[:]:
        key = kv.key
        value = kv.value
        text = value.string_value
        if text:  # a string that is not empty (one field of a oneof is set): most values
            values[key] = texts[key] = text
            continue
        number = value.int_value or value.double_value  # token counts, temperatures
        if number:  # not 0 (nor 0.0): that kind, whichever it is
            values[key] = number
            texts[key] = repr(number)  # as_text's, without its type tests
            continue
        kind = value.WhichOneof("value")
        if kind == "array_value":  # finish reasons, tags: strings, nearly always
            strings = [item.string_value for item in value.array_value.values[:]]
            if all(strings):  # each a string that is not empty: as_text's JSON, without it
                values[key] = strings
                texts[key] = "[" + ",".join(map(encode_basestring, strings)) + "]"
                continue
        plain = getattr(value, kind) if kind in _SCALARS else any_value(value)
        values[key] = plain
        texts[key] = as_text(plain)
    return values, texts


def text_attributes(pairs: Any) -> dict[str, str]:
    """`text_map(attributes(pairs))`."""
    return attributes_and_text(pairs)[1]


# json.dumps with any argument builds an encoder per call, which costs more than encoding a
# short list; one encoder, reused, gives the same text (it keeps no state between calls).
_COMPACT_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def as_text(value: Any) -> str:
    """The string form stored in Map(String, String) columns: JSON for anything structured."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, (int, float)):
        return repr(value)
    if value.__class__ is list and all(item.__class__ is str for item in value):
        # A list of strings (finish reasons, tags): the encoder's text, without the encoder it
        # builds per call (14,300 instructions for ["stop"], this 7,100).
        return "[" + ",".join(map(encode_basestring, value)) + "]"
    return _COMPACT_JSON.encode(value)


def text_map(values: dict[str, Any]) -> dict[str, str]:
    return {
        key: value if value.__class__ is str else as_text(value) for key, value in values.items()
    }
