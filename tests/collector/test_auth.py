"""Bearer tokens: OTLP (gRPC metadata, HTTP header) and the API are guarded separately; a wrong
or missing token is refused clearly and the collector keeps serving."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from google.rpc import status_pb2
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter

from assay.collector.auth import TokenCheck
from assay.collector.settings import load_settings
from assay.instrumentation import semconv as sc
from tests.collector.otlp_builders import make_request, make_span
from tests.conftest import RunningCollector, start_collector

OTLP_TOKENS = ("otlp-token-one", "otlp-token-two")
API_TOKEN = "api-token-0123456789"
PROTOBUF = {"content-type": "application/x-protobuf"}
ASSAY = [sys.executable, "-m", "assay.collector"]


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCollector]:
    base = tmp_path_factory.mktemp("guarded")
    running = start_collector(
        base / "data",
        base / "log",
        ASSAY_OTLP_TOKENS=",".join(OTLP_TOKENS),
        ASSAY_API_TOKENS=API_TOKEN,
    )
    assert running.api_token == API_TOKEN  # `query` and `wait_for_rows` present it
    yield running
    running.stop()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _service() -> str:
    return f"auth-{uuid.uuid4().hex[:10]}"


def _landed(collector: RunningCollector, service: str, count: int = 1) -> None:
    collector.wait_for_rows(
        f"SELECT 1 FROM assay.otel_traces WHERE ServiceName = '{service}'", count
    )


# --- the token check itself -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("header", "accepted"),
    [
        ("Bearer right", True),
        ("bearer right", True),
        ("  Bearer   right  ", True),
        ("Bearer other", True),
        ("Bearer wrong", False),
        ("Bearer righ", False),
        ("Bearer rightt", False),
        ("right", False),
        ("Basic cmlnaHQ=", False),
        ("Bearer ", False),
        ("", False),
        (None, False),
    ],
)
def test_token_check(header: str | None, accepted: bool) -> None:
    assert TokenCheck(["right", "other"], "API").allows(header) is accepted


def test_no_tokens_means_open() -> None:
    check = TokenCheck([], "OTLP")
    assert not check.enabled and check.allows(None) and check.allows("Bearer anything")


def test_refusals_say_what_is_missing() -> None:
    check = TokenCheck(["right"], "OTLP")
    assert "missing OTLP bearer token" in str(check.refusal(None))
    assert "must be 'Bearer <token>'" in str(check.refusal("right"))
    assert check.refusal("Bearer wrong") == "invalid OTLP bearer token"


def test_tokens_come_from_the_environment_or_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "assay.yaml"
    config.write_text("collector:\n  otlp_tokens: [file-one, file-two]\n  api_tokens: [file-api]\n")
    monkeypatch.delenv("ASSAY_OTLP_TOKENS", raising=False)
    monkeypatch.setenv("ASSAY_API_TOKENS", " env-api-1 , env-api-2 ,")
    settings = load_settings(config)
    assert settings.otlp_tokens == ["file-one", "file-two"]
    assert settings.api_tokens == ["env-api-1", "env-api-2"]  # the environment wins


# --- OTLP over gRPC -----------------------------------------------------------------------------
def _grpc_export(
    collector: RunningCollector, service: str, metadata: tuple[tuple[str, str], ...] = ()
) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{collector.grpc_port}") as channel:
        stub = trace_service_pb2_grpc.TraceServiceStub(channel)
        stub.Export(make_request(service, make_span()), metadata=metadata, timeout=10)


@pytest.mark.integration
@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ((), "missing OTLP bearer token"),
        ((("authorization", "Bearer nope"),), "invalid OTLP bearer token"),
        ((("authorization", f"Bearer {API_TOKEN}"),), "invalid OTLP bearer token"),
        ((("authorization", OTLP_TOKENS[0]),), "must be 'Bearer <token>'"),
    ],
    ids=["missing", "wrong", "api-token", "no-scheme"],
)
def test_grpc_without_a_valid_token_is_unauthenticated(
    guarded: RunningCollector, metadata: tuple[tuple[str, str], ...], message: str
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        _grpc_export(guarded, _service(), metadata)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert message in caught.value.details()


@pytest.mark.integration
@pytest.mark.parametrize("token", OTLP_TOKENS)
def test_grpc_with_a_valid_token_lands(guarded: RunningCollector, token: str) -> None:
    service = _service()
    _grpc_export(guarded, service, (("authorization", f"Bearer {token}"),))
    _landed(guarded, service)


# --- OTLP over HTTP -----------------------------------------------------------------------------
@pytest.mark.integration
def test_http_without_a_valid_token_gets_401_with_an_otlp_status(
    guarded: RunningCollector,
) -> None:
    body = make_request(_service(), make_span()).SerializeToString()
    url = f"{guarded.http_url}/v1/traces"
    for headers in ({}, _bearer("nope"), _bearer(API_TOKEN)):
        response = httpx.post(url, content=body, headers={**PROTOBUF, **headers})
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
        status = status_pb2.Status.FromString(response.content)
        assert status.code == 16  # UNAUTHENTICATED
        assert "OTLP bearer token" in status.message

    # A JSON request gets its error as JSON.
    response = httpx.post(url, content=b"{}", headers={"content-type": "application/json"})
    assert response.status_code == 401
    assert response.json()["code"] == 16
    assert response.json()["message"].startswith("missing OTLP bearer token")


@pytest.mark.integration
def test_http_with_a_valid_token_lands(guarded: RunningCollector) -> None:
    service = _service()
    response = httpx.post(
        f"{guarded.http_url}/v1/traces",
        content=make_request(service, make_span()).SerializeToString(),
        headers={**PROTOBUF, **_bearer(OTLP_TOKENS[1])},
    )
    assert response.status_code == 200
    _landed(guarded, service)


# --- the SDK exporters, configured the standard way --------------------------------------------
def _send_with(exporter: SpanExporter, service: str) -> None:
    provider = TracerProvider(resource=Resource.create({sc.SERVICE_NAME: service}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("tests").start_as_current_span("chat gpt-4o"):
        pass
    provider.shutdown()


@pytest.mark.integration
@pytest.mark.parametrize("transport", ["grpc", "http"])
def test_sdk_exporters_send_the_token_from_otel_exporter_otlp_headers(
    guarded: RunningCollector, transport: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", f"authorization=Bearer {OTLP_TOKENS[0]}")
    service = _service()
    exporter: SpanExporter = (
        GrpcExporter(endpoint=guarded.grpc_endpoint, insecure=True)
        if transport == "grpc"
        else HttpExporter(endpoint=f"{guarded.http_url}/v1/traces")
    )
    _send_with(exporter, service)
    _landed(guarded, service)


# --- the API ------------------------------------------------------------------------------------
@pytest.mark.integration
@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/api/query"), ("GET", "/api/calls"), ("GET", "/"), ("GET", "/api/nothing")],
)
def test_api_without_a_valid_token_gets_401(
    guarded: RunningCollector, method: str, path: str
) -> None:
    for headers in ({}, _bearer("nope"), _bearer(OTLP_TOKENS[0])):
        response = httpx.request(
            method, f"{guarded.http_url}{path}", json={"sql": "SELECT 1"}, headers=headers
        )
        assert response.status_code == 401, response.text
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert "API bearer token" in response.json()["error"]


@pytest.mark.integration
def test_api_with_the_token_answers(guarded: RunningCollector) -> None:
    response = httpx.post(
        f"{guarded.http_url}/api/query", json={"sql": "SELECT 1 AS one"}, headers=_bearer(API_TOKEN)
    )
    assert response.status_code == 200 and response.json()["rows"] == [{"one": 1}]
    response = httpx.get(f"{guarded.http_url}/api/calls", headers=_bearer(API_TOKEN))
    assert response.status_code == 200 and "calls" in response.json()


@pytest.mark.integration
def test_health_is_open_but_tells_outsiders_only_the_status(guarded: RunningCollector) -> None:
    outsider = httpx.get(f"{guarded.http_url}/api/health")
    assert outsider.status_code == 200 and outsider.json() == {"status": "ok"}
    insider = httpx.get(f"{guarded.http_url}/api/health", headers=_bearer(API_TOKEN)).json()
    assert insider["status"] == "ok" and "pipeline" in insider and "spool" in insider


@pytest.mark.integration
def test_assay_query_sends_assay_token(guarded: RunningCollector) -> None:
    def assay_query(
        token: str | None, *command: str, sql: str = "SELECT 42 AS answer"
    ) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "ASSAY_URL": guarded.http_url}
        env.pop("ASSAY_TOKEN", None)
        if token:
            env["ASSAY_TOKEN"] = token
        return subprocess.run(
            [*ASSAY, *(command or ("query", sql, "--format", "json"))],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )

    allowed = assay_query(API_TOKEN)
    assert allowed.returncode == 0, allowed.stderr
    assert '"answer": 42' in allowed.stdout
    refused = assay_query(None)
    assert refused.returncode == 1
    assert "missing API bearer token" in refused.stderr
    # A person at the CLI is told which variable carries the token, not an HTTP header only.
    for command in (("query", "SELECT 1"), ("experiments", "list"), ("prices",)):
        refused = assay_query("not-the-token", *command)
        assert refused.returncode in (1, 2), refused.stderr  # experiments: 2, can't be used
        said = " ".join(refused.stderr.split())
        assert "invalid API bearer token" in said and "ASSAY_TOKEN" in said, said


@pytest.mark.integration
def test_refusals_leave_the_collector_serving(guarded: RunningCollector) -> None:
    for _ in range(20):
        httpx.post(f"{guarded.http_url}/v1/traces", content=b"x", headers=PROTOBUF)
        httpx.post(f"{guarded.http_url}/api/query", json={"sql": "SELECT 1"})
    with pytest.raises(grpc.RpcError):
        _grpc_export(guarded, _service())
    service = _service()
    _grpc_export(guarded, service, (("authorization", f"Bearer {OTLP_TOKENS[0]}"),))
    _landed(guarded, service)


# --- metrics are guarded like traces and logs ---------------------------------------------------
@pytest.mark.integration
def test_metrics_need_the_otlp_token_on_both_transports(guarded: RunningCollector) -> None:
    from opentelemetry.proto.collector.metrics.v1 import (
        metrics_service_pb2,
        metrics_service_pb2_grpc,
    )

    request = metrics_service_pb2.ExportMetricsServiceRequest()
    resource_metrics = request.resource_metrics.add()
    service = _service()
    resource_metrics.resource.attributes.add(key=sc.SERVICE_NAME).value.string_value = service
    metric = resource_metrics.scope_metrics.add().metrics.add(name=sc.METRIC_TOKEN_USAGE)
    point = metric.histogram.data_points.add(count=1, sum=20.0, time_unix_nano=time.time_ns())
    point.bucket_counts.extend([0, 1])
    point.explicit_bounds.append(10.0)
    body = request.SerializeToString()

    url = f"{guarded.http_url}/v1/metrics"
    assert httpx.post(url, content=body, headers=PROTOBUF).status_code == 401
    with grpc.insecure_channel(f"127.0.0.1:{guarded.grpc_port}") as channel:
        stub = metrics_service_pb2_grpc.MetricsServiceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            stub.Export(request, timeout=10)
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        stub.Export(request, metadata=(("authorization", f"Bearer {OTLP_TOKENS[1]}"),), timeout=10)
    accepted = httpx.post(url, content=body, headers={**PROTOBUF, **_bearer(OTLP_TOKENS[0])})
    assert accepted.status_code == 200
    guarded.wait_for_rows(
        f"SELECT 1 FROM assay.otel_metrics_histogram WHERE ServiceName = '{service}'", 2
    )
