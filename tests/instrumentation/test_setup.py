"""`instrument()` and `import assay.instrumentation.auto`: provider, exporter, env, exit flush.

Anything that sets the global tracer provider runs in a subprocess: the global can be
set only once per process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.metadata import entry_points
from typing import Any

import grpc
import pytest
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.sdk.trace import TracerProvider

from assay.instrumentation import config, force_flush, instrument, semconv, uninstrument
from assay.instrumentation.providers.anthropic import AnthropicInstrumentor
from assay.instrumentation.providers.openai import OpenAIInstrumentor


def run_python(code: str, *, check: bool = True, **env: str) -> subprocess.CompletedProcess[str]:
    """Run `code` in a fresh interpreter with a clean OTel/Assay environment plus `env`; with
    `check`, it must succeed."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "ASSAY_"))}
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0 or not check, result.stderr
    return result


def exporter_of(code: str, **env: str) -> dict[str, Any]:
    """The exporter `code` leads `instrument()` to set up: its module and endpoint."""
    result = run_python(
        code
        + textwrap.dedent(
            """
            import json
            import assay.instrumentation as ai
            exporter = ai._setup.exporter
            print(json.dumps({"module": type(exporter).__module__, "endpoint": exporter._endpoint}))
            """
        ),
        **env,
    )
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


GRPC = "opentelemetry.exporter.otlp.proto.grpc.trace_exporter"
HTTP = "opentelemetry.exporter.otlp.proto.http.trace_exporter"
DEFAULT = "from assay.instrumentation import instrument; instrument()\n"


class TestExporterChoice:
    @pytest.mark.subprocess
    @pytest.mark.parametrize(
        ("code", "env", "module", "endpoint"),
        [
            (DEFAULT, {}, GRPC, "localhost:4317"),
            (
                DEFAULT,
                {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"},
                GRPC,
                "collector:4317",
            ),
            (DEFAULT, {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, GRPC, "localhost:4317"),
            (
                DEFAULT,
                {"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"},
                HTTP,
                "http://localhost:4318/v1/traces",
            ),
            (
                DEFAULT,
                {
                    "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                    "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318",
                },
                HTTP,
                "http://collector:4318/v1/traces",
            ),
            (
                DEFAULT,
                {
                    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
                    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:9999/custom/path",
                },
                HTTP,
                "http://collector:9999/custom/path",
            ),
            (
                "from assay.instrumentation import instrument\n"
                "instrument(protocol='http/protobuf', endpoint='http://args:4318/')\n",
                {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://env:4317"},
                HTTP,
                "http://args:4318/v1/traces",
            ),
            (
                "from assay.instrumentation import instrument\n"
                "instrument(endpoint='http://args:4317')\n",
                {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
                GRPC,
                "args:4317",
            ),
            ("import assay.instrumentation.auto\n", {}, GRPC, "localhost:4317"),
        ],
        ids=[
            "default",
            "env-endpoint",
            "env-grpc",
            "env-http",
            "env-http-endpoint",
            "env-traces-endpoint",
            "args-http",
            "args-grpc",
            "auto-import",
        ],
    )
    def test_exporter(self, code: str, env: dict[str, str], module: str, endpoint: str) -> None:
        exporter = exporter_of(code, **env)

        assert exporter == {"module": module, "endpoint": endpoint}


class TestProviderSetup:
    @pytest.mark.subprocess
    def test_resource_from_argument_and_environment(self) -> None:
        code = """
            import json
            from assay.instrumentation import instrument
            provider = instrument(%s)
            print(json.dumps(dict(provider.resource.attributes)))
        """
        env = {"OTEL_SERVICE_NAME": "from-env", "OTEL_RESOURCE_ATTRIBUTES": "team=llm,tier=gold"}

        from_env = json.loads(run_python(code % "", **env).stdout)
        from_arg = json.loads(run_python(code % "'checkout'", **env).stdout)

        assert from_env[semconv.SERVICE_NAME] == "from-env"
        assert from_env["team"] == "llm"
        assert from_env["tier"] == "gold"
        assert from_arg[semconv.SERVICE_NAME] == "checkout"
        assert from_arg["team"] == "llm"

    @pytest.mark.subprocess
    def test_sets_the_global_provider_once_and_is_idempotent(self) -> None:
        result = run_python(
            """
            from opentelemetry import trace
            from assay.instrumentation import instrument, uninstrument
            first = instrument("a")
            assert trace.get_tracer_provider() is first
            assert instrument("b") is first
            processors = first._active_span_processor._span_processors
            assert len(processors) == 1, processors
            uninstrument()
            assert instrument("c") is first  # the global SDK provider is reused
            assert len(first._active_span_processor._span_processors) == 1
            print("ok")
            """
        )
        assert result.stdout.strip() == "ok"
        assert "Overriding" not in result.stderr

    @pytest.mark.subprocess
    def test_reuses_the_users_global_sdk_provider_without_a_second_exporter(self) -> None:
        result = run_python(
            """
            from opentelemetry import trace
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import SimpleSpanProcessor
            from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
                InMemorySpanExporter,
            )
            import assay.instrumentation as ai

            mine = TracerProvider()
            mine.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
            trace.set_tracer_provider(mine)
            assert ai.instrument("ignored") is mine
            assert ai._setup.exporter is None
            assert len(mine._active_span_processor._span_processors) == 1
            print("ok")
            """
        )
        assert result.stdout.strip() == "ok"

    def test_a_passed_provider_leaves_the_global_alone(self) -> None:
        before = trace.get_tracer_provider()
        provider = TracerProvider(shutdown_on_exit=False)
        try:
            assert instrument(tracer_provider=provider) is provider
            assert trace.get_tracer_provider() is before
        finally:
            uninstrument()

    @pytest.mark.subprocess
    @pytest.mark.parametrize("missing", [["openai"], ["anthropic"], ["openai", "anthropic"]])
    def test_a_client_library_not_installed_is_skipped_silently(self, missing: list[str]) -> None:
        result = run_python(
            f"""
            import sys
            for name in {missing!r}:
                sys.modules[name] = None  # as if not installed
            from opentelemetry.sdk.trace import TracerProvider
            from assay.instrumentation import instrument, uninstrument
            from assay.instrumentation.providers.anthropic import AnthropicInstrumentor
            from assay.instrumentation.providers.openai import OpenAIInstrumentor
            provider = TracerProvider()
            assert instrument(tracer_provider=provider) is provider
            print(sorted(
                type(i).__name__
                for i in (AnthropicInstrumentor(), OpenAIInstrumentor())
                if i.is_instrumented_by_opentelemetry
            ))
            uninstrument()
            """
        )
        instrumented = {"openai": "OpenAIInstrumentor", "anthropic": "AnthropicInstrumentor"}
        expected = sorted(v for k, v in instrumented.items() if k not in missing)
        assert result.stdout.strip() == str(expected)
        assert result.stderr == ""

    @pytest.mark.subprocess
    def test_importing_the_package_is_light(self) -> None:
        result = run_python(
            """
            import sys
            import assay.instrumentation
            heavy = ["openai", "grpc", "opentelemetry.sdk", "opentelemetry.exporter", "wrapt"]
            print([name for name in heavy if name in sys.modules])
            """
        )
        assert result.stdout.strip() == "[]"

    def test_force_flush_with_the_passed_provider(
        self, instrument_with: Callable[..., TracerProvider]
    ) -> None:
        instrument_with()
        assert force_flush() is True

    @pytest.mark.parametrize(
        ("name", "instrumentor"),
        [("assay_openai", OpenAIInstrumentor), ("assay_anthropic", AnthropicInstrumentor)],
    )
    def test_entry_point_for_opentelemetry_instrument(self, name: str, instrumentor: type) -> None:
        (entry_point,) = [
            ep for ep in entry_points(group="opentelemetry_instrumentor") if ep.name == name
        ]
        assert entry_point.load() is instrumentor


class TestCaptureContentSetting:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            (None, True),
            ("true", True),
            ("1", True),
            ("yes please", True),
            ("false", False),
            ("False", False),
            (" 0 ", False),
            ("no", False),
            ("off", False),
        ],
    )
    def test_parsing(self, value: str | None, expected: bool) -> None:
        environ = {} if value is None else {config.CAPTURE_CONTENT_ENV: value}
        assert config.capture_content_from_env(environ) is expected


# --- end to end: a real OTLP receiver, a process that exits without flushing ---------------------

CALL_AND_EXIT = """
    import assay.instrumentation.auto
    from openai import OpenAI
    from assay.collector.demo.fake_openai import FakeOpenAI

    with FakeOpenAI() as fake:
        client = OpenAI(base_url=fake.base_url, api_key="k", max_retries=0)
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "ping"}]
        )
    # no force_flush(): the exit handler must deliver the span
"""


class _Received:
    def __init__(self) -> None:
        self.requests: list[trace_service_pb2.ExportTraceServiceRequest] = []
        self.headers: list[dict[str, str]] = []


@pytest.fixture
def http_receiver() -> Iterator[tuple[str, _Received]]:
    received = _Received()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            if self.path == "/v1/traces":
                request = trace_service_pb2.ExportTraceServiceRequest()
                request.ParseFromString(body)
                received.requests.append(request)
                received.headers.append({k.lower(): v for k, v in self.headers.items()})
            self.send_response(200 if self.path == "/v1/traces" else 404)
            self.send_header("content-type", "application/x-protobuf")
            self.send_header("content-length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02})
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def grpc_receiver() -> Iterator[tuple[str, _Received]]:
    received = _Received()

    class Service(trace_service_pb2_grpc.TraceServiceServicer):
        def Export(self, request: Any, context: Any) -> Any:
            received.requests.append(request)
            received.headers.append(dict(context.invocation_metadata()))
            return trace_service_pb2.ExportTraceServiceResponse()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Service(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"http://127.0.0.1:{port}", received
    server.stop(grace=None)


@pytest.mark.subprocess
@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_spans_reach_the_collector_at_exit(protocol: str, request: pytest.FixtureRequest) -> None:
    receiver = "grpc_receiver" if protocol == "grpc" else "http_receiver"
    endpoint, received = request.getfixturevalue(receiver)

    run_python(
        CALL_AND_EXIT,
        OTEL_EXPORTER_OTLP_PROTOCOL=protocol,
        OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
        OTEL_EXPORTER_OTLP_HEADERS="authorization=Bearer%20s3cret",
        OTEL_SERVICE_NAME="checkout",
        OTEL_BSP_SCHEDULE_DELAY="600000",  # only the exit flush can send it in time
    )

    (export,) = received.requests
    (resource_spans,) = export.resource_spans
    resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
    (scope_spans,) = resource_spans.scope_spans
    (span,) = scope_spans.spans
    attributes = {a.key: a.value for a in span.attributes}
    assert resource[semconv.SERVICE_NAME] == "checkout"
    assert span.name == "chat gpt-4o-mini"
    assert attributes[semconv.RESPONSE_MODEL].string_value == "gpt-4o-mini-2024-07-18"
    assert attributes[semconv.USAGE_INPUT_TOKENS].int_value > 0
    assert received.headers[0]["authorization"] == "Bearer s3cret"
