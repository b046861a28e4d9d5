"""Secrets in the places any span keeps them, LLM call or not: an HTTP client span whose
instrumentation captures request headers (`Authorization`, `X-Api-Key`) or whose URL carries a
key in its query is stored redacted when `api_key` redaction is on (it was stored as sent)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

from tests.collector.otlp_builders import make_request, make_span
from tests.conftest import RunningCollector, start_collector

pytestmark = pytest.mark.integration

KEY = "sk-proj-" + "Zq7" * 14  # the shape of an OpenAI key


@pytest.fixture(scope="module")
def redacting(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCollector]:
    base = tmp_path_factory.mktemp("redact-credentials")
    running = start_collector(base / "data", base / "log", ASSAY_REDACT="api_key")
    yield running
    running.stop()


def test_keys_in_captured_headers_and_urls_of_any_span_are_redacted(
    redacting: RunningCollector,
) -> None:
    service = f"http-{uuid.uuid4().hex[:8]}"
    span = make_span(
        "POST",
        {
            "http.request.method": "POST",
            "server.address": "api.openai.com",
            "http.request.header.authorization": [f"Bearer {KEY}"],
            "http.request.header.x-api-key": [KEY],
            "url.full": f"https://api.example.com/v1/search?api_key={KEY}&q=paris",
            "http.url": f"https://api.example.com/v1/search?key={KEY}",
        },
    )
    with grpc.insecure_channel(f"127.0.0.1:{redacting.grpc_port}") as channel:
        trace_service_pb2_grpc.TraceServiceStub(channel).Export(make_request(service, span))
    (row,) = redacting.wait_for_rows(
        f"SELECT SpanAttributes AS a FROM assay.otel_traces WHERE ServiceName = '{service}'", 1
    )
    stored = row["a"]
    leaked = {k: v for k, v in stored.items() if "Zq7Zq7" in v}
    assert not leaked, leaked
    for key in (
        "http.request.header.authorization",
        "http.request.header.x-api-key",
        "url.full",
        "http.url",
    ):
        assert "[REDACTED:api_key]" in stored[key], (key, stored[key])
    # What is not a secret stays as sent: the URL around the key, the other attributes.
    assert stored["url.full"].startswith("https://api.example.com/v1/search?")
    assert stored["url.full"].endswith("&q=paris")
    assert stored["server.address"] == "api.openai.com"
    assert stored["http.request.method"] == "POST"
