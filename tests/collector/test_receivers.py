"""OTLP over real gRPC and HTTP into a running collector; bad input is refused clearly."""

from __future__ import annotations

import gzip
import json
import time
import uuid
from collections.abc import Iterator

import grpc
import httpx
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind

from assay.instrumentation import semconv as sc
from tests.collector.otlp_builders import key_values, make_request, make_span
from tests.conftest import RunningCollector, start_collector


def _service() -> str:
    return f"svc-{uuid.uuid4().hex[:10]}"


def _emit(provider: TracerProvider) -> tuple[str, str]:
    tracer = provider.get_tracer("tests")
    with tracer.start_as_current_span("handle request", kind=SpanKind.SERVER) as parent:
        with tracer.start_as_current_span(
            "chat gpt-4o",
            kind=SpanKind.CLIENT,
            attributes={
                sc.OPERATION_NAME: sc.OP_CHAT,
                sc.REQUEST_MODEL: "gpt-4o",
                sc.USAGE_INPUT_TOKENS: 10,
                sc.USAGE_OUTPUT_TOKENS: 5,
            },
        ):
            pass
    provider.shutdown()
    context = parent.get_span_context()
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


@pytest.mark.parametrize("transport", ["grpc", "http"])
def test_sdk_exporters_deliver_spans(collector: RunningCollector, transport: str) -> None:
    service = _service()
    exporter = (
        GrpcExporter(endpoint=collector.grpc_endpoint, insecure=True)
        if transport == "grpc"
        else HttpExporter(endpoint=f"{collector.http_url}/v1/traces")
    )
    provider = TracerProvider(resource=Resource.create({sc.SERVICE_NAME: service}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace_id, parent_id = _emit(provider)

    spans = collector.wait_for_rows(
        f"SELECT SpanName, ParentSpanId FROM assay.otel_traces WHERE ServiceName = '{service}'", 2
    )
    assert {s["SpanName"] for s in spans} == {"handle request", "chat gpt-4o"}
    (call,) = collector.wait_for_rows(
        f"SELECT * FROM assay.llm_calls WHERE service_name = '{service}'", 1
    )
    assert call["trace_id"] == trace_id and call["parent_span_id"] == parent_id
    assert call["input_tokens"] == 10 and call["model"] == "gpt-4o"


def test_otlp_json_and_gzip_over_http(collector: RunningCollector) -> None:
    service = _service()
    span = make_span(attrs={sc.REQUEST_MODEL: "gpt-4o-mini", sc.USAGE_INPUT_TOKENS: 3})
    body = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": service}}]
                },
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": span.trace_id.hex(),
                                "spanId": span.span_id.hex(),
                                "name": "chat",
                                "startTimeUnixNano": str(span.start_time_unix_nano),
                                "endTimeUnixNano": str(span.end_time_unix_nano),
                                "attributes": [
                                    {
                                        "key": sc.REQUEST_MODEL,
                                        "value": {"stringValue": "gpt-4o-mini"},
                                    }
                                ],
                            }
                        ]
                    }
                ],
            }
        ]
    }
    response = httpx.post(
        f"{collector.http_url}/v1/traces",
        content=json.dumps(body),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 200 and response.json() == {}

    gzipped = gzip.compress(make_request(service, make_span()).SerializeToString())
    response = httpx.post(
        f"{collector.http_url}/v1/traces",
        content=gzipped,
        headers={"content-type": "application/x-protobuf", "content-encoding": "gzip"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-protobuf"

    rows = collector.wait_for_rows(
        f"SELECT TraceId FROM assay.otel_traces WHERE ServiceName = '{service}'", 2
    )
    assert span.trace_id.hex() in {r["TraceId"] for r in rows}


def test_logs_are_stored(collector: RunningCollector) -> None:
    service = _service()
    request = logs_service_pb2.ExportLogsServiceRequest()
    resource_logs = request.resource_logs.add()
    resource_logs.resource.attributes.extend(key_values({"service.name": service}))
    record = resource_logs.scope_logs.add().log_records.add()
    record.time_unix_nano = time.time_ns()
    record.body.string_value = "hello"
    record.trace_id = b"\x02" * 16
    response = httpx.post(
        f"{collector.http_url}/v1/logs",
        content=request.SerializeToString(),
        headers={"content-type": "application/x-protobuf"},
    )
    assert response.status_code == 200
    (row,) = collector.wait_for_rows(
        f"SELECT Body, TraceId FROM assay.otel_logs WHERE ServiceName = '{service}'", 1
    )
    assert row == {"Body": "hello", "TraceId": "02" * 16}


@pytest.mark.parametrize(
    ("content", "content_type", "status", "fragment"),
    [
        (b"\xff\xff\xff\xff garbage", "application/x-protobuf", 400, "malformed OTLP protobuf"),
        (b"{not json", "application/json", 400, "invalid JSON"),
        (b"", "application/x-protobuf", 400, "empty request body"),
        (b"{}", "text/plain", 415, "unsupported content type"),
        (b"\x1f\x8b garbage", "application/x-protobuf", 400, "gzip"),
    ],
)
def test_bad_http_input_gets_a_clear_error(
    collector: RunningCollector, content: bytes, content_type: str, status: int, fragment: str
) -> None:
    headers = {"content-type": content_type}
    if content.startswith(b"\x1f\x8b"):
        headers["content-encoding"] = "gzip"
    response = httpx.post(f"{collector.http_url}/v1/traces", content=content, headers=headers)
    assert response.status_code == status
    assert fragment in response.text
    # ... and the collector keeps serving.
    assert httpx.get(f"{collector.http_url}/api/health").status_code == 200


def test_every_member_of_a_multi_member_gzip_body_is_stored(collector: RunningCollector) -> None:
    """RFC 1952 lets a gzip body hold several members (`gzip.compress(a) + gzip.compress(b)`);
    protobuf bodies concatenate, so both halves are one request and both must land."""
    first, second = _service(), _service()
    body = gzip.compress(make_request(first, make_span()).SerializeToString()) + gzip.compress(
        make_request(second, make_span()).SerializeToString()
    )
    response = httpx.post(
        f"{collector.http_url}/v1/traces",
        content=body,
        headers={"content-type": "application/x-protobuf", "content-encoding": "gzip"},
    )
    assert response.status_code == 200, response.text
    for service in (first, second):
        collector.wait_for_rows(
            f"SELECT 1 FROM assay.otel_traces WHERE ServiceName = '{service}'", 1
        )


def test_a_gzip_body_with_trailing_garbage_is_refused(collector: RunningCollector) -> None:
    body = gzip.compress(make_request(_service(), make_span()).SerializeToString())
    response = httpx.post(
        f"{collector.http_url}/v1/traces",
        content=body + b"not gzip",
        headers={"content-type": "application/x-protobuf", "content-encoding": "gzip"},
    )
    assert response.status_code == 400 and "gzip" in response.text


def test_malformed_grpc_is_invalid_argument(collector: RunningCollector) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{collector.grpc_port}") as channel:
        export = channel.unary_unary(
            "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            request_serializer=None,
            response_deserializer=None,
        )
        with pytest.raises(grpc.RpcError) as caught:
            export(b"\xff\xff\xff\xff garbage", timeout=10)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "malformed" in caught.value.details()
        # The same channel still works for a good request.
        stub = trace_service_pb2_grpc.TraceServiceStub(channel)
        reply = stub.Export(make_request(_service(), make_span()), timeout=10)
        assert isinstance(reply, trace_service_pb2.ExportTraceServiceResponse)


@pytest.fixture(scope="module")
def small_collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCollector]:
    """A collector that takes requests of at most 64 KiB."""
    base = tmp_path_factory.mktemp("small")
    running = start_collector(base / "data", base / "log", ASSAY_MAX_REQUEST_BYTES="65536")
    yield running
    running.stop()


def _big_request() -> trace_service_pb2.ExportTraceServiceRequest:
    return make_request(_service(), make_span(attrs={sc.INPUT_MESSAGES: "x" * 100_000}))


@pytest.mark.integration
def test_oversized_payloads_are_refused(small_collector: RunningCollector) -> None:
    body = _big_request().SerializeToString()
    response = httpx.post(
        f"{small_collector.http_url}/v1/traces",
        content=body,
        headers={"content-type": "application/x-protobuf"},
    )
    assert response.status_code == 413

    # A small gzip that inflates past the limit is refused too.
    bomb = gzip.compress(body)
    assert len(bomb) < 65536
    response = httpx.post(
        f"{small_collector.http_url}/v1/traces",
        content=bomb,
        headers={"content-type": "application/x-protobuf", "content-encoding": "gzip"},
    )
    assert response.status_code == 413

    with grpc.insecure_channel(f"127.0.0.1:{small_collector.grpc_port}") as channel:
        stub = trace_service_pb2_grpc.TraceServiceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            stub.Export(_big_request(), timeout=10)
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        stub.Export(make_request(_service(), make_span()), timeout=10)  # still serving
