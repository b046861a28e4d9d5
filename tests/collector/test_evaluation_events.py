"""Scores as OpenTelemetry events, Assay's side: `gen_ai.evaluation.result` records read into
scores (what each attribute becomes), sent by `feedback(transport="otel")`, as span events, and
by an experiment run with `emit_events=True`, whose scores stay one row each."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from assay.collector.normalize.evaluation_results import score_row
from assay.instrumentation import feedback
from assay.instrumentation import semconv as sc
from assay.instrumentation.evaluation_events import evaluation_result_attributes
from tests.conftest import RunningCollector, free_port

# The module (the package's `feedback` is its function): where it keeps its event pipeline.
feedback_module = importlib.import_module("assay.instrumentation.feedback")

GOLDEN = Path(__file__).parents[1] / "evaluators" / "golden_five_experiment.py"
IDS = {"timestamp": 1, "trace_id": "t" * 32, "span_id": "s" * 16, "scope": "tool", "service": "svc"}


def read(**attributes: object) -> object:
    return score_row({key: str(value) for key, value in attributes.items()}, **IDS)


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        (  # the conventions' attributes, a verdict from the label, the sender named
            {sc.EVALUATION_SCORE_VALUE: 0.75, sc.EVALUATION_SCORE_LABEL: "Pass"},
            {"value": 0.75, "passed": True, "source": "otel", "author": "tool", "error": ""},
        ),
        (  # a verdict alone
            {sc.EVALUATION_SCORE_LABEL: "fail"},
            {"value": 0.0, "passed": False, "error": ""},
        ),
        (  # off the scale: kept in the error text, never averaged
            {sc.EVALUATION_SCORE_VALUE: 7},
            {"value": 0.0, "error": "score value '7' is not in [0, 1]; kept here, not as a value"},
        ),
        (  # a failed evaluation
            {sc.ERROR_TYPE: "TimeoutError", sc.ERROR_MESSAGE: "judge took 60 s"},
            {"value": 0.0, "passed": None, "error": "TimeoutError: judge took 60 s"},
        ),
        (  # Assay's own: its source, direction and (empty) author kept
            {
                sc.EVALUATION_SCORE_VALUE: 0.2,
                sc.SCORE_SOURCE: "experiment",
                sc.SCORE_DIRECTION: "lower_is_better",
                sc.SCORE_PASSED: "true",
            },
            {"source": "experiment", "direction": "lower_is_better", "author": "", "passed": True},
        ),
    ],
)
def test_what_an_event_becomes(attributes: dict[str, object], expected: dict[str, object]) -> None:
    row = read(**{sc.EVALUATION_NAME: "relevance", **attributes})
    assert row is not None
    assert {key: getattr(row, key) for key in expected} == expected


def test_an_event_without_a_name_is_no_score() -> None:
    assert read(**{sc.EVALUATION_SCORE_VALUE: 0.5}) is None


def test_feedback_and_span_events_sent_as_opentelemetry(
    collector: RunningCollector, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT"):
        monkeypatch.delenv(variable, raising=False)
    trace_id = uuid.uuid4().hex
    author = f"user-{uuid.uuid4().hex[:6]}"
    assert feedback(
        trace_id, 0, "wrong city", author=author, url=collector.http_url, transport="otel"
    )

    provider = TracerProvider(resource=Resource.create({sc.SERVICE_NAME: "events-test"}))
    exporter = OTLPSpanExporter(endpoint=f"{collector.http_url}/v1/traces")
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("a.judge").start_as_current_span("chat gpt-4o-mini") as span:
        span.add_event(
            sc.EVALUATION_RESULT_EVENT,
            evaluation_result_attributes("groundedness", 0.9, label="grounded", explanation="ok"),
        )
        span_id = f"{span.get_span_context().span_id:016x}"
    provider.shutdown()

    human = collector.wait_for_rows(
        "SELECT name, value, label, passed, source, author, explanation, span_id FROM scores"
        f" WHERE trace_id = '{trace_id}'",
        1,
    )
    assert human == [
        {
            "name": "feedback",
            "value": 0.0,
            "label": "thumbs_down",
            "passed": False,
            "source": "human",
            "author": author,
            "explanation": "wrong city",
            "span_id": "",
        }
    ]
    event = collector.wait_for_rows(
        f"SELECT name, value, label, source, author FROM scores WHERE span_id = '{span_id}'", 1
    )
    assert event == [
        {
            "name": "groundedness",
            "value": 0.9,
            "label": "grounded",
            "source": "otel",
            "author": "a.judge",
        }
    ]
    with pytest.raises(ValueError, match="transport"):
        feedback(trace_id, 1, transport="carrier pigeon")


@pytest.mark.parametrize("protocol", ["", "grpc", "http/protobuf"])
def test_feedback_as_an_event_goes_where_the_environment_sends_spans(
    collector: RunningCollector, monkeypatch: pytest.MonkeyPatch, protocol: str
) -> None:
    """`OTEL_EXPORTER_OTLP_ENDPOINT` at the collector's gRPC port, as for the spans
    (`instrument()`'s default protocol), or at its HTTP port with http/protobuf: the grade
    arrives. Events went over HTTP whatever the protocol, so at the gRPC port the grade was
    lost while feedback() said True."""
    monkeypatch.setattr(feedback_module, "_events", None)  # made again from this environment
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL", raising=False)
    endpoint = collector.http_url if protocol.startswith("http") else collector.grpc_endpoint
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
    if protocol:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
    else:
        monkeypatch.delenv("OTEL_EXPORTER_OTLP_PROTOCOL", raising=False)
    trace_id = uuid.uuid4().hex
    assert feedback(trace_id, 1, transport="otel")
    rows = collector.wait_for_rows(f"SELECT value FROM scores WHERE trace_id = '{trace_id}'", 1)
    assert rows == [{"value": 1.0}]


def test_feedback_as_an_event_that_cannot_be_sent_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(feedback_module, "_events", None)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    assert not feedback(uuid.uuid4().hex, 0, transport="otel", timeout=3)


def test_an_experiments_scores_sent_as_events_too_are_stored_once(
    collector: RunningCollector,
) -> None:
    name = f"emitted-{uuid.uuid4().hex[:8]}"
    environment = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_EXPORTER")}
    environment.update(
        ASSAY_URL=collector.http_url,
        GOLDEN_EXPERIMENT=name,
        GOLDEN_DATASET=f"{name}-set",
        GOLDEN_EMIT="1",
    )
    subprocess.run([sys.executable, str(GOLDEN)], env=environment, check=True, timeout=300)
    run = collector.query(f"SELECT experiment_id FROM experiments WHERE name = '{name}' LIMIT 1")
    experiment_id = run[0]["experiment_id"]
    sent = collector.wait_for_rows(
        "SELECT LogAttributes FROM otel_logs"
        f" WHERE EventName = '{sc.EVALUATION_RESULT_EVENT}'"
        f" AND LogAttributes['{sc.EXPERIMENT_ID}'] = '{experiment_id}'",
        5,
    )
    assert {r["LogAttributes"][sc.SCORE_SOURCE] for r in sent} == {"experiment"}
    scores = collector.query(
        "SELECT name, source, count() AS n FROM scores FINAL"
        f" WHERE experiment_id = '{experiment_id}' GROUP BY name, source"
    )
    assert scores == [{"name": "exact_match", "source": "experiment", "n": 5}]  # not 10


def test_an_experiment_says_when_its_events_were_lost_and_leaves_no_thread(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from assay.evaluators import Dataset, evaluate, exact_match

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "2")
    before = set(threading.enumerate())
    dataset = Dataset("echo", [{"input": "a", "expected": "a"}, {"input": "b", "expected": "b"}])
    for _ in range(2):  # a notebook runs one experiment after another
        result = evaluate(
            dataset,
            lambda text: text,
            [exact_match],
            record=False,
            progress=False,
            emit_events=True,
        )
        assert result.summary["exact_match"].mean == 1.0  # the run itself is unaffected
    assert "did not arrive" in caplog.text
    assert {t for t in threading.enumerate() if t.is_alive()} - before == set()
