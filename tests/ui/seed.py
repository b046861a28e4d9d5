"""Seeded calls for the UI tests: a conversation with tools, a failed call, a hostile prompt."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

from assay.instrumentation import semconv as sc
from tests.collector.otlp_builders import make_request, make_span
from tests.conftest import RunningCollector

HOSTILE = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'


def _messages(*pairs: tuple[str, str]) -> str:
    return json.dumps([{"role": r, "parts": [{"type": "text", "content": c}]} for r, c in pairs])


@dataclass
class Seeded:
    service: str
    span_ids: list[str]  # newest first
    trace_ids: list[str]
    hostile_span: str
    tool_span: str
    error_span: str


def seed_calls(collector: RunningCollector, service: str, plain: int = 6) -> Seeded:
    """`plain` ordinary calls plus a tool call, a failed call and a hostile prompt, one second
    apart (the newest now), each in a trace under a parent HTTP span."""
    now = time.time_ns()
    spans = []
    ids: list[tuple[int, str, str]] = []

    def add(attrs: dict[str, object], error: bool = False) -> str:
        start = now - (len(ids) + 1) * 1_000_000_000
        trace, parent, span = os.urandom(16), os.urandom(8), os.urandom(8)
        spans.append(
            make_span(
                "POST /ask",
                {},
                trace_id=trace,
                span_id=parent,
                start_ns=start,
                duration_ns=900_000_000,
            )
        )
        spans.append(
            make_span(
                f"chat {attrs[sc.REQUEST_MODEL]}",
                {sc.OPERATION_NAME: "chat", sc.PROVIDER_NAME: "openai", **attrs},
                trace_id=trace,
                span_id=span,
                parent_span_id=parent,
                start_ns=start + 1_000_000,
                duration_ns=800_000_000,
                error=error,
            )
        )
        ids.append((start, span.hex(), trace.hex()))
        return span.hex()

    for n in range(plain):
        add(
            {
                sc.REQUEST_MODEL: "gpt-4o-mini" if n % 2 else "gpt-4o",
                sc.USAGE_INPUT_TOKENS: 100 + n,
                sc.USAGE_OUTPUT_TOKENS: 20 + n,
                sc.PROMPT_NAME: "order-assistant",
                sc.PROMPT_VERSION: f"v{1 + n % 2}",
                sc.USER_ID: f"user-{n % 3}",
                sc.SESSION_ID: f"session-{n}",
                sc.INPUT_MESSAGES: _messages(("user", f"Where is my order #{1000 + n}?")),
                sc.OUTPUT_MESSAGES: _messages(("assistant", f"Order #{1000 + n} ships tomorrow.")),
            }
        )
    tool_span = add(
        {
            sc.REQUEST_MODEL: "gpt-4o",
            sc.PROMPT_NAME: "support-answer",
            sc.PROMPT_VERSION: "v3",
            sc.SYSTEM_INSTRUCTIONS: json.dumps(
                [{"type": "text", "content": "You are a support bot."}]
            ),
            sc.INPUT_MESSAGES: json.dumps(
                [
                    {
                        "role": "user",
                        "parts": [{"type": "text", "content": "What's the weather in Paris?"}],
                    },
                    {
                        "role": "assistant",
                        "parts": [
                            {
                                "type": "tool_call",
                                "id": "call_1",
                                "name": "weather",
                                "arguments": {"city": "Paris", "unit": "C"},
                            }
                        ],
                    },
                    {
                        "role": "tool",
                        "parts": [
                            {
                                "type": "tool_call_response",
                                "id": "call_1",
                                "response": {"temp": 21, "sky": "clear"},
                            }
                        ],
                    },
                ]
            ),
            sc.OUTPUT_MESSAGES: _messages(("assistant", "It is 21 °C and clear in Paris.")),
        }
    )
    error_span = add(
        {
            sc.REQUEST_MODEL: "gpt-4o",
            sc.PROMPT_NAME: "support-answer",
            sc.INPUT_MESSAGES: _messages(("user", "Cancel my subscription")),
        },
        error=True,
    )
    hostile_span = add(
        {
            sc.REQUEST_MODEL: "gpt-4o",
            sc.PROMPT_NAME: "support-answer",
            sc.INPUT_MESSAGES: _messages(("user", HOSTILE)),
            sc.OUTPUT_MESSAGES: _messages(("assistant", f"You wrote {HOSTILE}")),
        }
    )
    with grpc.insecure_channel(f"127.0.0.1:{collector.grpc_port}") as channel:
        trace_service_pb2_grpc.TraceServiceStub(channel).Export(make_request(service, *spans))
    collector.wait_for_rows(
        f"SELECT 1 FROM assay.llm_calls WHERE service_name = '{service}'", len(ids)
    )
    return Seeded(
        service, [s for _, s, _ in ids], [t for _, _, t in ids], hostile_span, tool_span, error_span
    )
