"""Run in the `splunk-genai` peer venv: one LLM invocation through Splunk's
opentelemetry-util-genai, then its evaluation results through the same handler, which sends
them as `gen_ai.evaluation.result` log records. Exports over OTLP/HTTP to the collector whose
base URL is argv[1]; prints the invocation's trace and span ids as JSON."""

from __future__ import annotations

import json
import sys

from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.util.genai.handler import get_telemetry_handler
from opentelemetry.util.genai.types import EvaluationResult, LLMInvocation

base = sys.argv[1].rstrip("/")
resource = Resource.create({"service.name": "peer-evaluations"})
tracer_provider = TracerProvider(resource=resource)
tracer_provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(f"{base}/v1/traces")))
logger_provider = LoggerProvider(resource=resource)
logger_provider.add_log_record_processor(
    SimpleLogRecordProcessor(OTLPLogExporter(f"{base}/v1/logs"))
)
handler = get_telemetry_handler(tracer_provider=tracer_provider, logger_provider=logger_provider)

invocation = LLMInvocation(request_model="gpt-4o-mini", provider="openai")
handler.start_llm(invocation)
invocation.response_model_name = "gpt-4o-mini"
invocation.input_tokens, invocation.output_tokens = 12, 3
handler.stop_llm(invocation)
handler.evaluation_results(
    invocation,
    [
        EvaluationResult(
            metric_name="relevance",
            score=0.8,
            label="relevant",
            explanation="It answers the question.",
            attributes={"gen_ai.evaluation.passed": True},
        ),
        EvaluationResult(metric_name="toxicity", score=0.1, label="not toxic"),
        EvaluationResult(metric_name="bias", score=4.0, label="biased"),  # not on [0, 1]
    ],
)
tracer_provider.shutdown()
logger_provider.shutdown()
context = invocation.span.get_span_context()
print(json.dumps({"trace_id": f"{context.trace_id:032x}", "span_id": f"{context.span_id:016x}"}))
