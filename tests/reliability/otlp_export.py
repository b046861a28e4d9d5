"""One OTLP export over each transport (gRPC, HTTP protobuf, HTTP JSON) to a running collector:
its status and the decoded export response."""

from __future__ import annotations

import base64
import json

import grpc
import httpx
from google.protobuf import json_format
from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from assay.collector.normalize.otlp import SIGNALS

TRANSPORTS = ("protobuf", "json", "grpc")
RESPONSES: dict[str, type[Message]] = {
    "traces": ExportTraceServiceResponse,
    "logs": ExportLogsServiceResponse,
    "metrics": ExportMetricsServiceResponse,
}
REJECTED = {  # the partial-success count of each signal
    "traces": "rejected_spans",
    "logs": "rejected_log_records",
    "metrics": "rejected_data_points",
}
GRPC_METHODS = {
    "traces": "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    "logs": "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
    "metrics": "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
}


def otlp_json(request: Message) -> bytes:
    """The OTLP/JSON body of a request: protobuf's JSON mapping, with trace and span ids in hex
    (where protobuf's mapping has base64): spans', their links' and log records'."""
    document = json.loads(json_format.MessageToJson(request))
    items = [
        item
        for resource in document.get("resourceSpans", [])
        for scope in resource.get("scopeSpans", [])
        for span in scope.get("spans", [])
        for item in (span, *span.get("links", []))
    ] + [
        record
        for resource in document.get("resourceLogs", [])
        for scope in resource.get("scopeLogs", [])
        for record in scope.get("logRecords", [])
    ]
    for item in items:
        for field in ("traceId", "spanId", "parentSpanId"):
            if field in item:
                item[field] = base64.b64decode(item[field]).hex()
    return json.dumps(document).encode()


def export(
    grpc_port: int, http_url: str, signal: str, body: bytes, how: str
) -> tuple[bool, Message | None, str]:
    """Send `body` (protobuf bytes) as `how`; (accepted, export response, refusal reason)."""
    response = RESPONSES[signal]()
    if how == "grpc":
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            call = channel.unary_unary(
                GRPC_METHODS[signal], request_serializer=None, response_deserializer=None
            )
            try:
                response.ParseFromString(call(body, timeout=30))
            except grpc.RpcError as exc:
                return False, None, f"{exc.code().name}: {exc.details()}"
        return True, response, ""
    if how == "json":
        content_type = "application/json"
        message = SIGNALS[signal]()
        message.ParseFromString(body)
        body = otlp_json(message)
    else:
        content_type = "application/x-protobuf"
    answer = httpx.post(
        f"{http_url}/v1/{signal}", content=body, headers={"content-type": content_type}, timeout=30
    )
    if answer.status_code != 200:
        return False, None, f"{answer.status_code}: {answer.text[:300]}"
    if content_type == "application/json":
        json_format.Parse(answer.content or b"{}", response)
    else:
        response.ParseFromString(answer.content)
    return True, response, ""
