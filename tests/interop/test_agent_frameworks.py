"""Agent frameworks, real packages, against the local fake OpenAI API, sent to a real collector:
the OpenAI Agents SDK with Assay's instrumentation, LangGraph with OpenInference's LangChain
instrumentor, PydanticAI with its own OTel output. Each run must give a correct trace summary,
one `tool_calls` row per tool call and one `llm_calls` row per model call.

The frameworks' tracer providers are their own (never the process's global one), each with a
resource naming a service of its own, so the tests tell their rows apart on a shared collector.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from assay.collector.demo.fake_openai import FakeOpenAI
from assay.instrumentation import instrument, uninstrument
from tests.conftest import RunningCollector

MODEL = "gpt-4o-mini"
QUESTION = "What is the weather in Paris?"
CITY_WEATHER = "sunny"


def weather(city: str) -> str:
    """The weather of a city."""
    return f"{CITY_WEATHER} in {city}"


def forecast(city: str) -> str:
    """Tomorrow's weather of a city (its service is down)."""
    raise RuntimeError(f"forecast service down for {city}")


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def service() -> str:
    return f"agents-interop-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def tracer_provider(collector: RunningCollector, service: str) -> Iterator[TracerProvider]:
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service}))
    exporter = OTLPSpanExporter(endpoint=f"{collector.http_url}/v1/traces")
    provider.add_span_processor(BatchSpanProcessor(exporter))
    yield provider
    provider.shutdown()


def rows(collector: RunningCollector, table: str, service: str, count: int) -> list[dict[str, Any]]:
    return collector.wait_for_rows(
        f"SELECT * FROM assay.{table} WHERE service_name = '{service}' ORDER BY timestamp", count
    )


def summary(collector: RunningCollector, trace_id: str, spans: int) -> dict[str, Any]:
    """The trace's summary once all `spans` of it are in (spans arrive in batches)."""
    sql = f"SELECT * FROM assay.trace_summary WHERE trace_id = '{trace_id}' AND spans >= {spans}"
    (row,) = collector.wait_for_rows(sql, 1)
    return row


def span_count(collector: RunningCollector, trace_id: str) -> int:
    (row,) = collector.query(
        f"SELECT count() AS n FROM assay.otel_traces WHERE TraceId = '{trace_id}'"
    )
    return int(row["n"])


def check_run(
    collector: RunningCollector,
    service: str,
    *,
    agent: str,
    tools: list[tuple[str, str]],
    llm_calls: int,
) -> dict[str, Any]:
    """The rows of one run in `service`: `tools` (name, status) in order, `llm_calls` LLM rows,
    and a trace summary that adds them up. Returns the summary."""
    tool_rows = rows(collector, "tool_calls", service, len(tools))
    call_rows = rows(collector, "llm_calls", service, llm_calls)
    assert [(t["tool_name"], t["status"]) for t in tool_rows] == tools
    assert len(call_rows) == llm_calls  # one row per model call, never two
    (trace_id,) = {t["trace_id"] for t in tool_rows} | {c["trace_id"] for c in call_rows}
    for tool in tool_rows:
        # The fake calls a tool with the question's words; OpenInference records a one-argument
        # LangChain tool's input as that text, the others as the JSON of the arguments.
        assert "Paris" in tool["arguments"]
        if tool["status"] == "ok":
            assert CITY_WEATHER in tool["result"]
        assert tool["agent_name"] == agent
    got = summary(collector, trace_id, span_count(collector, trace_id))
    assert got["has_root"]
    assert got["service_name"] == service
    assert got["agent_name"] == agent
    assert got["llm_calls"] == llm_calls
    assert got["tool_calls"] == len(tools)
    assert got["tool_errors"] == sum(status == "error" for _, status in tools)
    assert got["input_tokens"] == sum(c["input_tokens"] for c in call_rows) > 0
    assert got["output_tokens"] == sum(c["output_tokens"] for c in call_rows) > 0
    assert got["cost_usd"] == pytest.approx(sum(c["cost_usd"] for c in call_rows))
    check_trace_page(collector, trace_id, got, tools)
    return got


def check_trace_page(
    collector: RunningCollector,
    trace_id: str,
    summary_row: dict[str, Any],
    tools: list[tuple[str, str]],
) -> None:
    """The trace page's data (`/api/traces/{id}`) is the whole run as one tree, in the summary's
    terms, and the page itself shows the tools and the agent."""
    body = httpx.get(f"{collector.http_url}/api/traces/{trace_id}", timeout=30).json()
    spans = body["spans"]
    assert len(spans) == summary_row["spans"]
    assert spans[0]["depth"] == 0 and spans[0]["name"] == summary_row["root_name"]
    assert all(span["depth"] > 0 for span in spans[1:])  # one root: every other span under it
    assert [(s["tool_name"], s["status"]) for s in spans if s["kind"] == "tool"] == tools
    # Spans with an LLM call row: a framework's LLM span and the client's inside it are one call.
    assert sum(bool(s["llm"]) for s in spans) == summary_row["llm_calls"]
    assert body["summary"]["tool_errors"] == summary_row["tool_errors"]
    page = httpx.get(f"{collector.http_url}/traces/{trace_id}", timeout=30)
    assert page.status_code == 200
    for name, _ in tools:
        assert name in page.text


# --- OpenAI Agents SDK, instrumented by Assay ---------------------------------------------------


@pytest.fixture
def agents_sdk(fake: FakeOpenAI, tracer_provider: TracerProvider) -> Iterator[Any]:
    agents = pytest.importorskip("agents")
    from openai import AsyncOpenAI

    from assay.instrumentation.providers.openai_agents import OpenAIAgentsInstrumentor

    uninstrument()
    instrument(tracer_provider=tracer_provider)
    # Assay's processor alone: the SDK's default one would export to OpenAI.
    agents.set_trace_processors([OpenAIAgentsInstrumentor().processor])
    client = AsyncOpenAI(base_url=fake.base_url, api_key="test-key", max_retries=0)
    agents.set_default_openai_client(client, use_for_tracing=False)
    yield agents
    uninstrument()
    tracer_provider.force_flush()


@pytest.mark.parametrize("tool", [weather, forecast], ids=["tool-ok", "tool-fails"])
def test_openai_agents_sdk_with_assay(
    collector: RunningCollector,
    service: str,
    agents_sdk: Any,
    tracer_provider: TracerProvider,
    tool: Any,
) -> None:
    agent = agents_sdk.Agent(
        name="forecaster",
        instructions="Answer briefly.",
        tools=[agents_sdk.function_tool(tool)],
        model=MODEL,
    )

    async def conversation_turn() -> None:
        with agents_sdk.trace("help desk", group_id=f"{service}-conversation"):
            await agents_sdk.Runner.run(agent, QUESTION)

    asyncio.run(conversation_turn())
    tracer_provider.force_flush()
    status = "ok" if tool is weather else "error"
    got = check_run(
        collector, service, agent="forecaster", tools=[(tool.__name__, status)], llm_calls=2
    )
    assert got["root_name"] == "invoke_workflow help desk"
    assert got["root_kind"] == "workflow"
    assert got["session_id"] == f"{service}-conversation"


# --- LangGraph, instrumented by OpenInference ---------------------------------------------------


@pytest.fixture
def langchain_instrumented(tracer_provider: TracerProvider) -> Iterator[None]:
    instrumentation = pytest.importorskip("openinference.instrumentation.langchain")
    pytest.importorskip("langgraph")
    instrumentor = instrumentation.LangChainInstrumentor()
    instrumentor.instrument(tracer_provider=tracer_provider)
    yield
    instrumentor.uninstrument()


@pytest.fixture(params=[False, True], ids=["alone", "with-assay"])
def assay_too(request: pytest.FixtureRequest, tracer_provider: TracerProvider) -> Iterator[bool]:
    """Assay's own client instrumentation on as well (the one-line import in the same service):
    the framework's LLM span and the client's are one call, one `llm_calls` row."""
    uninstrument()
    if request.param:
        instrument(tracer_provider=tracer_provider)
    yield request.param
    uninstrument()


def test_langgraph_with_openinference(
    collector: RunningCollector,
    service: str,
    fake: FakeOpenAI,
    tracer_provider: TracerProvider,
    langchain_instrumented: None,
    assay_too: bool,
) -> None:
    from langchain_core.tools import tool
    from langchain_openai import ChatOpenAI
    from langgraph.prebuilt import create_react_agent

    llm = ChatOpenAI(model=MODEL, base_url=fake.base_url, api_key="test-key", max_retries=0)
    graph = create_react_agent(llm, [tool(weather)], name="forecaster")
    answer = graph.invoke({"messages": [("user", QUESTION)]})
    assert CITY_WEATHER in answer["messages"][-1].content
    tracer_provider.force_flush()
    # The graph's root is a chain named after it, and OpenInference's spans name no agent
    # (`agent.name`, not even the model node's AGENT span): the graph's name is the agent's, of
    # the run and of its tool calls.
    got = check_run(collector, service, agent="forecaster", tools=[("weather", "ok")], llm_calls=2)
    assert got["root_name"] == "forecaster"
    assert got["root_kind"] == "chain"


# --- PydanticAI, its own OTel output ------------------------------------------------------------


@pytest.mark.parametrize("tool", [weather, forecast], ids=["tool-ok", "tool-fails"])
def test_pydantic_ai_with_its_own_spans(
    collector: RunningCollector,
    service: str,
    fake: FakeOpenAI,
    tracer_provider: TracerProvider,
    tool: Any,
    assay_too: bool,
) -> None:
    pytest.importorskip("pydantic_ai")
    from pydantic_ai import Agent
    from pydantic_ai.capabilities import Instrumentation
    from pydantic_ai.models.instrumented import InstrumentationSettings
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider

    model = OpenAIChatModel(
        MODEL, provider=OpenAIProvider(base_url=fake.base_url, api_key="test-key")
    )
    settings = InstrumentationSettings(tracer_provider=tracer_provider)
    agent = Agent(
        model,
        name="forecaster",
        instructions="Answer briefly.",
        tools=[tool],
        capabilities=[Instrumentation(settings=settings)],
    )
    if tool is weather:
        agent.run_sync(QUESTION)
    else:
        with pytest.raises(RuntimeError, match="forecast service down"):
            agent.run_sync(QUESTION)
    tracer_provider.force_flush()
    status = "ok" if tool is weather else "error"
    # A tool that raises ends the run: the model is called once, not again with the result.
    got = check_run(
        collector,
        service,
        agent="forecaster",
        tools=[(tool.__name__, status)],
        llm_calls=2 if tool is weather else 1,
    )
    assert got["root_name"] == "invoke_agent forecaster"
    assert got["root_kind"] == "agent"
    assert got["status"] == ("ok" if tool is weather else "error")
