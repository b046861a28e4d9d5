"""Hostile input: fuzzed protobuf and JSON, deep nesting, huge values, invalid UTF-8 and floods
of tiny spans. The decoders answer with clear errors, never crash, and the collector serves on."""

from __future__ import annotations

import json
import random
import time
import uuid
from typing import Any

import grpc
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from assay.collector.normalize.logs import normalize_logs
from assay.collector.normalize.otlp import (
    InvalidRequest,
    decode_json,
    decode_protobuf,
    read_protobuf,
)
from assay.collector.normalize.traces import normalize_traces
from assay.instrumentation import semconv as sc
from tests.collector.otlp_builders import make_request, make_span
from tests.conftest import RunningCollector
from tests.reliability.otlp_export import export
from tests.reliability.traffic import EXPORT

GOOD = make_request(
    "fuzz",
    make_span(
        attrs={sc.REQUEST_MODEL: "gpt-4o", sc.USAGE_INPUT_TOKENS: 5, sc.INPUT_MESSAGES: "[]"}
    ),
).SerializeToString()
HTTP_ANSWERS = {200, 400, 413}


def _normalize(signal: str, request: Any) -> None:
    if signal == "traces":
        normalize_traces(request)
    else:
        normalize_logs(request)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["traces", "logs"]), st.binary(max_size=2000))
def test_any_bytes_decode_or_are_refused_clearly(signal: str, body: bytes) -> None:
    try:
        request = decode_protobuf(signal, body)
    except InvalidRequest as exc:
        assert "malformed OTLP protobuf" in str(exc)
        return
    _normalize(signal, request)  # whatever decodes must normalize without raising


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=1, max_size=len(GOOD)), st.integers(0, len(GOOD) - 1))
def test_mutated_valid_requests_never_crash(noise: bytes, at: int) -> None:
    mutated = GOOD[:at] + noise + GOOD[at + len(noise) :]
    try:
        request = decode_protobuf("traces", mutated)
    except InvalidRequest:
        return
    _normalize("traces", request)


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=30,
)
_span_keys = st.sampled_from(
    [
        "traceId",
        "spanId",
        "parentSpanId",
        "name",
        "kind",
        "attributes",
        "startTimeUnixNano",
        "endTimeUnixNano",
        "status",
        "events",
        "links",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_span_keys, _json_values, max_size=6), _json_values)
def test_json_shaped_like_otlp_decodes_or_is_refused(span: dict[str, Any], extra: Any) -> None:
    document = {"resourceSpans": [{"scopeSpans": [{"spans": [span]}], "x": extra}]}
    try:
        request = decode_json("traces", json.dumps(document).encode())
    except InvalidRequest:
        return
    _normalize("traces", request)


def test_deep_nesting_is_refused_not_a_crash() -> None:
    deep_json = ("[" * 100_000 + "]" * 100_000).encode()
    for body in (deep_json, b'{"resourceSpans": ' + deep_json + b"}"):
        with pytest.raises(InvalidRequest, match="invalid JSON"):
            decode_json("traces", body)
    # An attribute value nested far past protobuf's recursion limit.
    value = _field(1, b"")  # AnyValue{string_value=""}
    for _ in range(5000):
        value = _field(5, _field(1, value))  # AnyValue{array_value=ArrayValue{values=[value]}}
    span = _field(9, _field(1, b"k") + _field(2, value))  # Span.attributes = [KeyValue]
    body = _field(1, _field(2, _field(2, span)))  # request.resource_spans.scope_spans.spans
    with pytest.raises(InvalidRequest, match="malformed"):
        decode_protobuf("traces", body)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def _with_invalid_utf8_bytes(body: bytes, marker: str) -> bytes:
    """`body` with each `marker` (11 characters) replaced by as many bytes, three of them not
    UTF-8 (a C++ or Go SDK can send any bytes as a string)."""
    assert len(marker) == 11
    return body.replace(marker.encode(), b"\xff\xfe\xfa invalid")


def _with_invalid_utf8(request: Any, marker: str) -> bytes:
    return _with_invalid_utf8_bytes(request.SerializeToString(), marker)


def test_invalid_utf8_in_strings_is_mended_not_refused() -> None:
    request = make_request(
        "utf8", make_span(name="PLACEHOLDER", attrs={"PLACEHOLDER": ["PLACEHOLDER", "fine"]})
    )
    decoded, mended = read_protobuf("traces", _with_invalid_utf8(request, "PLACEHOLDER"))
    assert mended == 3  # a name, an attribute key, a value in an array
    span = decoded.resource_spans[0].scope_spans[0].spans[0]  # type: ignore[attr-defined]
    assert span.name == "\ufffd\ufffd\ufffd invalid"
    assert span.attributes[0].key == span.name
    assert [v.string_value for v in span.attributes[0].value.array_value.values] == [
        span.name,
        "fine",
    ]
    assert span.trace_id == request.resource_spans[0].scope_spans[0].spans[0].trace_id
    # Bytes that are malformed otherwise are refused as before.
    with pytest.raises(InvalidRequest, match="malformed"):
        read_protobuf("traces", _with_invalid_utf8(request, "PLACEHOLDER")[:-3])


@pytest.mark.parametrize("how", ["protobuf", "grpc"])
def test_a_request_with_invalid_utf8_is_stored_whole_and_the_client_told(
    collector: RunningCollector, how: str
) -> None:
    service = f"utf8-{uuid.uuid4().hex[:6]}"  # 11 characters, the marker's length
    request = make_request(
        service,
        make_span(name="ok span", attrs={"prompt": service}),
        make_span(name=service, attrs={sc.REQUEST_MODEL: "gpt-4o-mini"}),
    )
    # The resource comes first: its service name stays valid (the rows are found by it), the
    # span's name and the other span's attribute value do not.
    body = request.SerializeToString()
    after_resource = body.index(service.encode()) + len(service)
    body = body[:after_resource] + _with_invalid_utf8_bytes(body[after_resource:], service)
    accepted, response, why = export(collector.grpc_port, collector.http_url, "traces", body, how)
    assert accepted and response is not None, why
    partial = response.partial_success  # type: ignore[attr-defined]
    assert partial.rejected_spans == 0
    assert "string not valid UTF-8: its invalid bytes replaced with U+FFFD (x2)" in (
        partial.error_message
    )
    rows = collector.wait_for_rows(
        "SELECT SpanName, SpanAttributes['prompt'] AS prompt FROM assay.otel_traces"
        f" WHERE ServiceName = '{service}' ORDER BY SpanName",
        2,
    )
    mended = "\ufffd\ufffd\ufffd invalid"
    assert [(r["SpanName"], r["prompt"]) for r in rows] == [("ok span", mended), (mended, "")]
    assert collector.wait_for_rows(
        f"SELECT 1 FROM assay.llm_calls WHERE service_name = '{service}'", 1
    )


def test_garbage_over_the_wire_leaves_the_collector_serving(collector: RunningCollector) -> None:
    rng = random.Random(1234)
    answers: dict[int, int] = {}
    bodies = [bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 3000))) for _ in range(150)]
    bodies += [GOOD[: rng.randint(1, len(GOOD) - 1)] for _ in range(50)]  # truncated requests
    with httpx.Client() as client, grpc.insecure_channel(f"127.0.0.1:{collector.grpc_port}") as ch:
        export = ch.unary_unary(EXPORT, request_serializer=None, response_deserializer=None)
        for body in bodies:
            for content_type in ("application/x-protobuf", "application/json"):
                status = client.post(
                    f"{collector.http_url}/v1/traces",
                    content=body,
                    headers={"content-type": content_type},
                ).status_code
                answers[status] = answers.get(status, 0) + 1
            try:
                export(body, timeout=10)
            except grpc.RpcError as exc:
                assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT, exc
    assert set(answers) <= HTTP_ANSWERS, answers
    assert httpx.get(f"{collector.http_url}/api/health").json()["status"] == "ok"


def test_huge_attribute_values_and_floods_of_tiny_spans(collector: RunningCollector) -> None:
    service = f"flood-{uuid.uuid4().hex[:8]}"
    huge = make_request(
        service, make_span(attrs={sc.REQUEST_MODEL: "m", sc.INPUT_MESSAGES: "z" * 8_000_000})
    )
    response = httpx.post(
        f"{collector.http_url}/v1/traces",
        content=huge.SerializeToString(),
        headers={"content-type": "application/x-protobuf"},
        timeout=60,
    )
    assert response.status_code == 200

    tiny = ExportTraceServiceRequest()
    resource_spans = tiny.resource_spans.add()
    resource_spans.resource.attributes.add(key="service.name").value.string_value = service
    spans = resource_spans.scope_spans.add().spans
    now = time.time_ns()
    for i in range(200_000):
        spans.add(
            trace_id=(i + 1).to_bytes(16, "big"),  # an all-zero id is invalid
            span_id=(i + 1).to_bytes(8, "big"),
            name="t",
            start_time_unix_nano=now,
            end_time_unix_nano=now,
        )
    response = httpx.post(
        f"{collector.http_url}/v1/traces",
        content=tiny.SerializeToString(),
        headers={"content-type": "application/x-protobuf"},
        timeout=60,
    )
    assert response.status_code == 200
    started = time.monotonic()
    assert httpx.get(f"{collector.http_url}/api/health", timeout=10).status_code == 200
    assert time.monotonic() - started < 5
    # The huge prompt is stored whole once, in its llm_calls row (otel_traces keeps a preview).
    rows = collector.wait_for_rows(
        "SELECT 1 FROM (SELECT count() AS n FROM assay.otel_traces"
        f" WHERE ServiceName = '{service}') WHERE n = 200001"
        " AND (SELECT max(length(input_messages)) FROM assay.llm_calls"
        f" WHERE service_name = '{service}') = 8000000",
        1,
        timeout=120,
    )
    assert rows
