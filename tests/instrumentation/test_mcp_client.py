"""MCP client tool calls: the real `mcp` client and server, connected in-process, as
`execute_tool` spans."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from assay.instrumentation import semconv as sc
from assay.instrumentation.providers.openai_agents import OpenAIAgentsInstrumentor
from tests.lazy import lazy_import

agents: Any = lazy_import("agents")  # imported by the first test, not at collection


def connect() -> Any:
    """An MCP client of the calculator server, in-process (imports mcp when a test runs)."""
    from mcp import Client

    from tests.apps.mcp_calculator import server

    return Client(server)


def call(name: str, arguments: dict[str, Any]) -> Any:
    async def _call() -> Any:
        async with connect() as client:
            return await client.call_tool(name, arguments)

    return asyncio.run(_call())


def tool_spans(spans: InMemorySpanExporter) -> list[Any]:
    return [
        s
        for s in spans.get_finished_spans()
        if (s.attributes or {}).get(sc.OPERATION_NAME) == sc.OP_EXECUTE_TOOL
    ]


def test_a_tool_call_is_an_execute_tool_span(spans: InMemorySpanExporter) -> None:
    call("add", {"a": 2, "b": 3})
    (span,) = tool_spans(spans)
    assert span.name == "execute_tool add"
    assert span.attributes[sc.TOOL_NAME] == "add"
    assert span.attributes[sc.TOOL_TYPE] == sc.TOOL_TYPE_EXTENSION
    assert span.attributes[sc.MCP_METHOD_NAME] == sc.MCP_METHOD_TOOLS_CALL
    assert json.loads(str(span.attributes[sc.TOOL_CALL_ARGUMENTS])) == {"a": 2, "b": 3}
    assert json.loads(str(span.attributes[sc.TOOL_CALL_RESULT])) == {"result": 5}
    assert span.status.status_code == StatusCode.UNSET


def test_an_error_result_is_an_error_span(spans: InMemorySpanExporter) -> None:
    result = call("divide", {"a": 1, "b": 0})
    assert result.is_error  # the call itself succeeded: the server answered with an error
    (span,) = tool_spans(spans)
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes[sc.ERROR_TYPE] == "tool_error"
    assert "divide" in str(span.attributes[sc.TOOL_CALL_RESULT])


def test_content_capture_off_keeps_arguments_and_results_off(
    instrument_with: Callable[..., TracerProvider], span_exporter: InMemorySpanExporter
) -> None:
    instrument_with(capture_content=False)
    call("add", {"a": 2, "b": 3})
    (span,) = tool_spans(span_exporter)
    assert sc.TOOL_CALL_ARGUMENTS not in (span.attributes or {})
    assert sc.TOOL_CALL_RESULT not in (span.attributes or {})


def test_inside_an_agent_frameworks_span_of_the_same_tool_one_span(
    spans: InMemorySpanExporter,
) -> None:
    """The Agents SDK runs an MCP server's tool inside its function span: one tool span."""
    agents.set_trace_processors([OpenAIAgentsInstrumentor().processor])

    async def _run() -> None:
        async with connect() as client:
            with agents.trace("mcp workflow"), agents.function_span("add", input='{"a":1}'):
                await client.call_tool("add", {"a": 1, "b": 1})

    asyncio.run(_run())
    (span,) = tool_spans(spans)
    assert span.attributes[sc.TOOL_TYPE] == sc.TOOL_TYPE_FUNCTION  # the SDK's span
    assert span.attributes[sc.MCP_METHOD_NAME] == sc.MCP_METHOD_TOOLS_CALL  # MCP's details


def test_uninstrument_stops_the_spans(
    instrument_with: Callable[..., TracerProvider], span_exporter: InMemorySpanExporter
) -> None:
    from assay.instrumentation import uninstrument

    instrument_with()
    uninstrument()
    call("add", {"a": 2, "b": 3})
    assert tool_spans(span_exporter) == []


@pytest.mark.subprocess
def test_an_agents_sdk_run_with_an_mcp_server_has_one_span_per_tool_call(
    spans: InMemorySpanExporter, fake: Any
) -> None:
    """The Agents SDK calling a real MCP server over stdio: its function span carries the MCP
    details, and the MCP client's call makes no second tool span."""
    from agents.mcp import MCPServerStdio
    from openai import AsyncOpenAI

    agents.set_trace_processors([OpenAIAgentsInstrumentor().processor])
    client = AsyncOpenAI(base_url=fake.base_url, api_key="test-key", max_retries=0)
    agents.set_default_openai_client(client, use_for_tracing=False)
    params = {"command": sys.executable, "args": ["-m", "tests.apps.mcp_calculator"]}

    async def _run() -> str:
        async with MCPServerStdio(
            params, name="calculator", client_session_timeout_seconds=60
        ) as mcp:
            agent = agents.Agent(name="maths", model="gpt-4o-mini", mcp_servers=[mcp])
            result = await agents.Runner.run(agent, "Add 2 and 3")
            return str(result.final_output)

    asyncio.run(_run())
    (span,) = tool_spans(spans)
    assert span.name == "execute_tool add"
    assert span.attributes[sc.TOOL_TYPE] == sc.TOOL_TYPE_EXTENSION
    assert span.attributes[sc.MCP_SERVER_NAME] == "calculator"
    assert span.attributes[sc.MCP_METHOD_NAME] == sc.MCP_METHOD_TOOLS_CALL
    assert json.loads(str(span.attributes[sc.TOOL_CALL_ARGUMENTS])) == {"a": 1, "b": 1}
    # The SDK lists the server's tools once per turn.
    listings = [s for s in spans.get_finished_spans() if s.name == "tools/list calculator"]
    assert len(listings) == 2
    assert {s.attributes[sc.MCP_METHOD_NAME] for s in listings} == {sc.MCP_METHOD_TOOLS_LIST}
