"""Agent runs as each dialect spells them, for tests: one run of a support agent that calls an LLM,
calls a tool that fails, calls it again and answers (GenAI, OpenInference, OpenLLMetry)."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.trace.v1.trace_pb2 import Span

from assay.collector.normalize.dialects import openinference as oi
from assay.collector.normalize.dialects import openllmetry as ol
from assay.instrumentation import semconv as sc
from tests.collector.otlp_builders import make_span

MS = 1_000_000
ARGUMENTS = {"order_id": "A-17"}
RESULT = {"status": "shipped"}
QUESTION = "Where is my order A-17?"
ANSWER = "Your order A-17 has shipped."


@dataclass
class AgentRun:
    """The spans of one run, root first, and what a reader should make of them."""

    trace_id: bytes
    spans: list[Span] = field(default_factory=list)
    agent: str = "support-agent"
    tool: str = "lookup_order"

    @property
    def trace_hex(self) -> str:
        return self.trace_id.hex()


def _ids() -> tuple[bytes, bytes, bytes, bytes, bytes]:
    return tuple(os.urandom(8) for _ in range(5))  # type: ignore[return-value]


def _messages(role: str, text: str) -> str:
    return json.dumps([{"role": role, "parts": [{"type": "text", "content": text}]}])


def _llm_attrs(
    tokens: tuple[int, int], session: str, ask: str = QUESTION, answer: str = ANSWER
) -> dict[str, Any]:
    return {
        sc.INPUT_MESSAGES: _messages("user", ask),
        sc.OUTPUT_MESSAGES: _messages("assistant", answer),
        sc.OPERATION_NAME: sc.OP_CHAT,
        sc.PROVIDER_NAME: "openai",
        sc.REQUEST_MODEL: "gpt-4o-mini",
        sc.USAGE_INPUT_TOKENS: tokens[0],
        sc.USAGE_OUTPUT_TOKENS: tokens[1],
        sc.SESSION_ID: session,
        sc.USER_ID: "u-1",
    }


def genai_run(session: str = "s-1", start_ns: int | None = None) -> AgentRun:
    """The OTel GenAI conventions: invoke_agent → chat, execute_tool ×2 (one failing), chat."""
    run = AgentRun(trace_id=os.urandom(16))
    t0 = start_ns or time.time_ns()
    root, llm1, tool1, tool2, llm2 = _ids()

    def tool_attrs(call_id: str, result: Any = None) -> dict[str, Any]:
        attrs = {
            sc.OPERATION_NAME: sc.OP_EXECUTE_TOOL,
            sc.TOOL_NAME: run.tool,
            sc.TOOL_CALL_ID: call_id,
            sc.TOOL_TYPE: "function",
            sc.TOOL_CALL_ARGUMENTS: json.dumps(ARGUMENTS),
        }
        if result is not None:
            attrs[sc.TOOL_CALL_RESULT] = json.dumps(result)
        return attrs

    common = {"trace_id": run.trace_id}
    run.spans = [
        make_span(
            f"invoke_agent {run.agent}",
            {sc.OPERATION_NAME: sc.OP_INVOKE_AGENT, sc.AGENT_NAME: run.agent},
            span_id=root,
            start_ns=t0,
            duration_ns=100 * MS,
            **common,
        ),
        make_span(
            "chat gpt-4o-mini",
            _llm_attrs((100, 20), session),
            span_id=llm1,
            parent_span_id=root,
            start_ns=t0 + 1 * MS,
            duration_ns=20 * MS,
            **common,
        ),
        make_span(
            f"execute_tool {run.tool}",
            {**tool_attrs("call-1"), sc.ERROR_TYPE: "TimeoutError"},
            span_id=tool1,
            parent_span_id=root,
            start_ns=t0 + 22 * MS,
            duration_ns=10 * MS,
            error=True,
            **common,
        ),
        make_span(
            f"execute_tool {run.tool}",
            tool_attrs("call-2", RESULT),
            span_id=tool2,
            parent_span_id=root,
            start_ns=t0 + 33 * MS,
            duration_ns=5 * MS,
            **common,
        ),
        make_span(
            "chat gpt-4o-mini",
            _llm_attrs((200, 40), session),
            span_id=llm2,
            parent_span_id=root,
            start_ns=t0 + 40 * MS,
            duration_ns=50 * MS,
            **common,
        ),
    ]
    return run


def openinference_run(session: str = "s-2") -> AgentRun:
    """OpenInference: AGENT → LLM, TOOL (input.value / output.value), CHAIN, RETRIEVER."""
    run = AgentRun(trace_id=os.urandom(16), agent="researcher", tool="web_search")
    t0 = time.time_ns()
    root, llm, tool, chain, retriever = _ids()
    common = {"trace_id": run.trace_id}
    run.spans = [
        make_span(
            "agent",
            {oi.SPAN_KIND: "AGENT", oi.AGENT_NAME: run.agent, sc.SESSION_ID: session},
            span_id=root,
            start_ns=t0,
            duration_ns=80 * MS,
            **common,
        ),
        make_span(
            "ChatCompletion",
            {
                oi.SPAN_KIND: "LLM",
                "llm.model_name": "gpt-4o-mini",
                "llm.token_count.prompt": 50,
                "llm.token_count.completion": 10,
            },
            span_id=llm,
            parent_span_id=root,
            start_ns=t0 + MS,
            duration_ns=10 * MS,
            **common,
        ),
        make_span(
            run.tool,
            {
                oi.SPAN_KIND: "TOOL",
                oi.TOOL_NAME: run.tool,
                oi.INPUT_VALUE: json.dumps(ARGUMENTS),
                oi.OUTPUT_VALUE: json.dumps(RESULT),
            },
            span_id=tool,
            parent_span_id=chain,
            start_ns=t0 + 12 * MS,
            duration_ns=10 * MS,
            **common,
        ),
        make_span(
            "plan",
            {oi.SPAN_KIND: "CHAIN"},
            span_id=chain,
            parent_span_id=root,
            start_ns=t0 + 11 * MS,
            duration_ns=30 * MS,
            **common,
        ),
        make_span(
            "retrieve",
            {oi.SPAN_KIND: "RETRIEVER"},
            span_id=retriever,
            parent_span_id=root,
            start_ns=t0 + 50 * MS,
            duration_ns=10 * MS,
            **common,
        ),
    ]
    return run


def openllmetry_run(session: str = "s-3") -> AgentRun:
    """OpenLLMetry: workflow → agent → task → tool (entity input/output), and an LLM call."""
    run = AgentRun(trace_id=os.urandom(16), agent="booking_agent", tool="book_flight")
    t0 = time.time_ns()
    workflow, agent, task, tool, llm = _ids()
    session_key = ol.SESSION_KEYS[0]
    common = {"trace_id": run.trace_id}
    run.spans = [
        make_span(
            "trip.workflow",
            {ol.SPAN_KIND: "workflow", ol.ENTITY_NAME: "trip", session_key: session},
            span_id=workflow,
            start_ns=t0,
            duration_ns=90 * MS,
            **common,
        ),
        make_span(
            f"{run.agent}.agent",
            {ol.SPAN_KIND: "agent", ol.ENTITY_NAME: run.agent, session_key: session},
            span_id=agent,
            parent_span_id=workflow,
            start_ns=t0 + MS,
            duration_ns=80 * MS,
            **common,
        ),
        make_span(
            "choose.task",
            {ol.SPAN_KIND: "task", ol.ENTITY_NAME: "choose"},
            span_id=task,
            parent_span_id=agent,
            start_ns=t0 + 2 * MS,
            duration_ns=40 * MS,
            **common,
        ),
        make_span(
            f"{run.tool}.tool",
            {
                ol.SPAN_KIND: "tool",
                ol.ENTITY_NAME: run.tool,
                ol.ENTITY_INPUT: json.dumps({"args": [], "kwargs": ARGUMENTS}),
                ol.ENTITY_OUTPUT: json.dumps(RESULT),
            },
            span_id=tool,
            parent_span_id=task,
            start_ns=t0 + 3 * MS,
            duration_ns=10 * MS,
            **common,
        ),
        make_span(
            "openai.chat",
            {
                ol.REQUEST_TYPE: "chat",
                sc.REQUEST_MODEL: "gpt-4o-mini",
                "gen_ai.usage.prompt_tokens": 30,
                "gen_ai.usage.completion_tokens": 5,
                session_key: session,
            },
            span_id=llm,
            parent_span_id=agent,
            start_ns=t0 + 50 * MS,
            duration_ns=10 * MS,
            **common,
        ),
    ]
    return run
