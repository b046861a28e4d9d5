"""TLS on both listeners: the SDK exporters and httpx reach the collector over TLS with its
certificate; plain-text clients and untrusting ones do not; bad TLS settings are clear errors."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter

from assay.instrumentation import semconv as sc
from tests.collector.otlp_builders import make_request, make_span
from tests.conftest import RunningCollector, free_port, start_collector

ASSAY = [sys.executable, "-m", "assay.collector"]


@dataclass(frozen=True)
class Certificate:
    cert_file: Path
    key_file: Path

    @property
    def pem(self) -> bytes:
        return self.cert_file.read_bytes()


def make_self_signed(folder: Path) -> Certificate:
    """A certificate for localhost and 127.0.0.1, valid for a day, and its key (PEM files)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return Certificate(cert_file, key_file)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return make_self_signed(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def secure(
    tmp_path_factory: pytest.TempPathFactory, certificate: Certificate
) -> Iterator[RunningCollector]:
    base = tmp_path_factory.mktemp("secure")
    running = start_collector(
        base / "data",
        base / "log",
        ASSAY_TLS_CERT=str(certificate.cert_file),
        ASSAY_TLS_KEY=str(certificate.key_file),
    )
    assert running.http_url.startswith("https://")
    yield running
    running.stop()


def _send_with(exporter: SpanExporter, service: str) -> None:
    provider = TracerProvider(resource=Resource.create({sc.SERVICE_NAME: service}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("tests").start_as_current_span("chat gpt-4o"):
        pass
    provider.shutdown()


@pytest.mark.integration
@pytest.mark.parametrize("transport", ["grpc", "http"])
def test_sdk_exporters_deliver_over_tls(
    secure: RunningCollector,
    certificate: Certificate,
    transport: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE win over a session's own CA file
    # (psf/requests#4650), which would hide the exporter's certificate_file.
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    service = f"tls-{uuid.uuid4().hex[:10]}"
    exporter: SpanExporter = (
        GrpcExporter(
            endpoint=secure.grpc_endpoint,
            credentials=grpc.ssl_channel_credentials(root_certificates=certificate.pem),
        )
        if transport == "grpc"
        else HttpExporter(
            endpoint=f"{secure.http_url}/v1/traces", certificate_file=str(certificate.cert_file)
        )
    )
    _send_with(exporter, service)
    secure.wait_for_rows(f"SELECT 1 FROM assay.otel_traces WHERE ServiceName = '{service}'", 1)


@pytest.mark.integration
def test_the_api_answers_over_tls(secure: RunningCollector) -> None:
    response = httpx.post(
        f"{secure.http_url}/api/query", json={"sql": "SELECT 1 AS one"}, verify=secure.verify
    )
    assert response.status_code == 200 and response.json()["rows"] == [{"one": 1}]


@pytest.mark.integration
def test_plain_text_and_untrusting_clients_are_turned_away(secure: RunningCollector) -> None:
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{secure.http_port}/api/health", timeout=5)
    with pytest.raises(httpx.ConnectError):  # the system CAs do not know the certificate
        httpx.get(f"{secure.http_url}/api/health", timeout=5)
    with grpc.insecure_channel(f"127.0.0.1:{secure.grpc_port}") as channel:
        stub = trace_service_pb2_grpc.TraceServiceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            stub.Export(make_request("plain", make_span()), timeout=5)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    # ... and the collector keeps serving TLS clients.
    assert httpx.get(f"{secure.http_url}/api/health", verify=secure.verify).status_code == 200


@pytest.mark.integration
def test_the_ready_line_names_the_tls_endpoints(secure: RunningCollector) -> None:
    log = secure.log()
    assert f"OTLP gRPC on grpcs://127.0.0.1:{secure.grpc_port}" in log
    assert f"OTLP HTTP, API and UI on https://127.0.0.1:{secure.http_port}" in log


# --- settings that cannot work --------------------------------------------------------------------
def _collector(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    args = ["--storage", str(tmp_path / "d"), "--grpc-port", str(free_port())]
    return subprocess.run(
        [*ASSAY, "collector", *args, "--http-port", str(free_port())],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=60,
        check=False,
    )


@pytest.mark.subprocess
def test_a_certificate_without_a_key_is_a_usage_error(
    tmp_path: Path, certificate: Certificate
) -> None:
    result = _collector(tmp_path, ASSAY_TLS_CERT=str(certificate.cert_file))
    assert result.returncode == 2
    assert "tls_cert is set but tls_key is not" in result.stderr


@pytest.mark.subprocess
def test_a_missing_tls_file_is_a_usage_error(tmp_path: Path, certificate: Certificate) -> None:
    result = _collector(
        tmp_path,
        ASSAY_TLS_CERT=str(certificate.cert_file),
        ASSAY_TLS_KEY=str(tmp_path / "nowhere.pem"),
    )
    assert result.returncode == 2
    assert "tls_key: no such file" in result.stderr


@pytest.mark.subprocess
def test_a_key_that_does_not_fit_stops_the_start(tmp_path: Path, certificate: Certificate) -> None:
    other = make_self_signed(tmp_path / "other")
    result = _collector(
        tmp_path, ASSAY_TLS_CERT=str(certificate.cert_file), ASSAY_TLS_KEY=str(other.key_file)
    )
    assert result.returncode == 1
    assert "cannot use TLS certificate" in result.stderr
