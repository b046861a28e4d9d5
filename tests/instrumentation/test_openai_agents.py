"""OpenAI Agents SDK instrumentation: real agent runs (the real `agents` and `openai` packages)
against the local fake OpenAI API, as OTel GenAI agent, tool and LLM spans."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest
from openai import AsyncOpenAI
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from assay.collector.demo.fake_openai import FakeOpenAI
from assay.instrumentation import semconv as sc
from assay.instrumentation.providers import openai_agents
from assay.instrumentation.providers.openai import OpenAIInstrumentor
from assay.instrumentation.providers.openai_agents import OpenAIAgentsInstrumentor
from tests.lazy import lazy_import

if TYPE_CHECKING:
    from agents import Agent

agents: Any = lazy_import("agents")  # the SDK is imported by the first test, not at collection

MODEL = "gpt-4o-mini"
QUESTION = "What is the weather in Paris?"


def get_weather(city: str) -> str:
    """The weather of a city."""
    return f"sunny in {city}"


def get_forecast(city: str) -> str:
    """Tomorrow's weather of a city (always fails here)."""
    raise RuntimeError(f"forecast service down for {city}")


@pytest.fixture(autouse=True)
def only_assay_processor() -> Iterator[None]:
    """The SDK's default processor exports to OpenAI: the tests keep Assay's alone."""
    agents.set_trace_processors([OpenAIAgentsInstrumentor().processor])
    yield
    agents.set_trace_processors([OpenAIAgentsInstrumentor().processor])


@pytest.fixture(autouse=True)
def contexts_restored(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Every OTel context made current for an SDK step is restored in the context it was made
    in (OTel logs an error for a token detached elsewhere)."""
    with caplog.at_level(logging.WARNING, logger="opentelemetry.context"):
        yield
    assert not [r for r in caplog.records if "detach" in r.getMessage()]


@pytest.fixture(params=["responses", "chat_completions"])
def api(request: pytest.FixtureRequest, fake: FakeOpenAI) -> Iterator[str]:
    """The SDK's model API (Responses by default), its client on the fake."""
    client = AsyncOpenAI(base_url=fake.base_url, api_key="test-key", max_retries=0)
    agents.set_default_openai_client(client, use_for_tracing=False)
    agents.set_default_openai_api(request.param)
    yield request.param
    agents.set_default_openai_api("responses")


def run(agent: Agent[Any], prompt: str = QUESTION, **options: Any) -> Any:
    return asyncio.run(agents.Runner.run(agent, prompt, **options))


def by_operation(spans: InMemorySpanExporter, operation: str) -> list[ReadableSpan]:
    return [
        s
        for s in spans.get_finished_spans()
        if (s.attributes or {}).get(sc.OPERATION_NAME) == operation
    ]


def parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def weather_agent(*tools: Callable[[str], str]) -> Agent[Any]:
    """An agent with `tools` (plain functions, made the SDK's function tools here)."""
    return agents.Agent(
        name="weather",
        instructions="Answer briefly.",
        tools=[agents.function_tool(tool) for tool in tools],
        model=MODEL,
    )


def test_a_run_is_a_workflow_of_an_agent_with_its_llm_and_tool_calls(
    spans: InMemorySpanExporter, api: str
) -> None:
    result = run(weather_agent(get_weather))
    assert "sunny in" in result.final_output

    (workflow,) = by_operation(spans, sc.OP_INVOKE_WORKFLOW)
    (agent,) = by_operation(spans, sc.OP_INVOKE_AGENT)
    (tool,) = by_operation(spans, sc.OP_EXECUTE_TOOL)
    llm_calls = by_operation(spans, sc.OP_CHAT)
    # One LLM span per model call: the openai client's, not a second one from the SDK's record.
    assert len(llm_calls) == 2
    assert {s.attributes[sc.PROVIDER_NAME] for s in llm_calls} == {sc.PROVIDER_OPENAI}
    assert all(s.attributes[sc.USAGE_INPUT_TOKENS] > 0 for s in llm_calls)

    assert workflow.parent is None
    assert workflow.attributes[sc.WORKFLOW_NAME] == "Agent workflow"
    assert agent.name == "invoke_agent weather"
    assert agent.attributes[sc.AGENT_NAME] == "weather"
    assert parent_of(agent) == workflow.context.span_id
    # The client's LLM spans and the tool span nest under the agent that made them.
    assert {parent_of(s) for s in [*llm_calls, tool]} == {agent.context.span_id}
    assert {s.context.trace_id for s in spans.get_finished_spans()} == {workflow.context.trace_id}

    assert tool.name == "execute_tool get_weather"
    assert tool.attributes[sc.TOOL_NAME] == "get_weather"
    assert tool.attributes[sc.TOOL_TYPE] == sc.TOOL_TYPE_FUNCTION
    city = json.loads(str(tool.attributes[sc.TOOL_CALL_ARGUMENTS]))["city"]
    assert tool.attributes[sc.TOOL_CALL_RESULT] == f"sunny in {city}"
    assert tool.status.status_code == StatusCode.UNSET
    # The tool ran between the two model calls.
    first, second = sorted(llm_calls, key=lambda s: s.start_time or 0)
    assert (first.end_time or 0) <= (tool.start_time or 0)
    assert (tool.end_time or 0) <= (second.start_time or 0)


def test_a_failing_tool_is_an_error_span(spans: InMemorySpanExporter, api: str) -> None:
    run(weather_agent(get_forecast))
    (tool,) = by_operation(spans, sc.OP_EXECUTE_TOOL)
    assert tool.attributes[sc.TOOL_NAME] == "get_forecast"
    assert tool.status.status_code == StatusCode.ERROR
    assert tool.attributes[sc.ERROR_TYPE]
    (agent,) = by_operation(spans, sc.OP_INVOKE_AGENT)
    assert agent.status.status_code == StatusCode.UNSET  # the model was told, the run went on


def test_a_handoff_names_both_agents(spans: InMemorySpanExporter, api: str) -> None:
    specialist = weather_agent(get_weather)
    triage = agents.Agent(
        name="triage", instructions="Hand off.", handoffs=[specialist], model=MODEL
    )
    run(triage)
    (handoff,) = [s for s in spans.get_finished_spans() if s.name.startswith("handoff")]
    assert handoff.name == "handoff weather"
    assert handoff.attributes[sc.AGENT_HANDOFF_FROM] == "triage"
    assert handoff.attributes[sc.AGENT_HANDOFF_TO] == "weather"
    assert [s.attributes[sc.AGENT_NAME] for s in by_operation(spans, sc.OP_INVOKE_AGENT)] == [
        "triage",
        "weather",
    ]


def test_a_trace_group_is_the_conversation(spans: InMemorySpanExporter, api: str) -> None:
    async def two_turns() -> None:
        for prompt in (QUESTION, "And in Rome?"):
            with agents.trace("weather chat", group_id="conversation-7"):
                await agents.Runner.run(weather_agent(), prompt)

    asyncio.run(two_turns())
    workflows = by_operation(spans, sc.OP_INVOKE_WORKFLOW)
    assert [s.name for s in workflows] == ["invoke_workflow weather chat"] * 2
    assert {s.attributes[sc.CONVERSATION_ID] for s in workflows} == {"conversation-7"}
    assert len({s.context.trace_id for s in workflows}) == 2


def test_a_run_inside_an_application_span_is_part_of_its_trace(
    spans: InMemorySpanExporter, tracer_provider: TracerProvider, api: str
) -> None:
    with tracer_provider.get_tracer("app").start_as_current_span("handle request") as outer:
        run(weather_agent())
    (workflow,) = by_operation(spans, sc.OP_INVOKE_WORKFLOW)
    assert parent_of(workflow) == outer.get_span_context().span_id


def test_without_an_instrumented_client_the_sdk_record_is_the_llm_span(
    tracer_provider: TracerProvider, span_exporter: InMemorySpanExporter, api: str
) -> None:
    """A model the SDK calls through no instrumented client still gives one LLM span each."""
    instrumentor = OpenAIAgentsInstrumentor()
    OpenAIInstrumentor().uninstrument()
    instrumentor.instrument(tracer_provider=tracer_provider, capture_content=True)
    try:
        run(weather_agent(get_weather))
    finally:
        instrumentor.uninstrument()
    llm_calls = by_operation(span_exporter, sc.OP_CHAT)
    assert len(llm_calls) == 2
    (agent,) = by_operation(span_exporter, sc.OP_INVOKE_AGENT)
    for call in llm_calls:
        assert parent_of(call) == agent.context.span_id
        assert call.attributes[sc.USAGE_INPUT_TOKENS] > 0
        assert call.attributes[sc.USAGE_OUTPUT_TOKENS] > 0
        assert str(call.attributes[sc.REQUEST_MODEL]).startswith(MODEL)
        if api == "chat_completions":  # the SDK records the client's URL for this API only
            assert call.attributes[sc.SERVER_ADDRESS] == "127.0.0.1"
        assert call.attributes[sc.COST_USD] > 0
        assert (call.start_time or 0) >= (agent.start_time or 0)


def test_content_capture_off_keeps_tool_arguments_and_results_off(
    instrument_with: Callable[..., TracerProvider],
    span_exporter: InMemorySpanExporter,
    api: str,
) -> None:
    instrument_with(capture_content=False)
    run(weather_agent(get_weather))
    (tool,) = by_operation(span_exporter, sc.OP_EXECUTE_TOOL)
    assert sc.TOOL_CALL_ARGUMENTS not in (tool.attributes or {})
    assert sc.TOOL_CALL_RESULT not in (tool.attributes or {})
    assert tool.attributes[sc.TOOL_NAME] == "get_weather"


def test_uninstrument_stops_the_agent_spans(
    instrument_with: Callable[..., TracerProvider],
    span_exporter: InMemorySpanExporter,
    api: str,
) -> None:
    from assay.instrumentation import uninstrument

    instrument_with()
    uninstrument()
    run(weather_agent(get_weather))
    assert span_exporter.get_finished_spans() == ()


def test_an_assay_failure_leaves_the_run_alone(
    spans: InMemorySpanExporter, api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any) -> Any:
        raise RuntimeError("assay bug")

    monkeypatch.setattr(openai_agents.AgentSpans, "_describe_start", broken)
    monkeypatch.setattr(openai_agents.AgentSpans, "_describe_end", broken)
    result = run(weather_agent(get_weather))
    assert "sunny in" in result.final_output
    # The client's LLM spans are still there, in the workflow's trace.
    (workflow,) = by_operation(spans, sc.OP_INVOKE_WORKFLOW)
    llm_calls = by_operation(spans, sc.OP_CHAT)
    assert len(llm_calls) == 2
    assert {s.context.trace_id for s in llm_calls} == {workflow.context.trace_id}


def test_a_streamed_run_gives_the_same_spans(spans: InMemorySpanExporter, api: str) -> None:
    """`run_streamed` runs the agent loop in a task of its own and streams the model's answer."""

    async def streamed() -> str:
        result = agents.Runner.run_streamed(weather_agent(get_weather), QUESTION)
        async for _ in result.stream_events():
            pass
        return str(result.final_output)

    assert "sunny in" in asyncio.run(streamed())
    (workflow,) = by_operation(spans, sc.OP_INVOKE_WORKFLOW)
    (agent,) = by_operation(spans, sc.OP_INVOKE_AGENT)
    (tool,) = by_operation(spans, sc.OP_EXECUTE_TOOL)
    llm_calls = by_operation(spans, sc.OP_CHAT)
    assert len(llm_calls) == 2
    assert all(s.attributes[sc.REQUEST_STREAM] for s in llm_calls)
    assert {parent_of(s) for s in [*llm_calls, tool]} == {agent.context.span_id}
    assert parent_of(agent) == workflow.context.span_id


def no_passwords(context: Any, agent: Agent[Any], prompt: Any) -> agents.GuardrailFunctionOutput:
    return agents.GuardrailFunctionOutput(
        output_info=None, tripwire_triggered="password" in str(prompt)
    )


@pytest.mark.parametrize("prompt", [QUESTION, "My password is hunter2"])
def test_a_guardrail_is_a_span_saying_whether_it_tripped(
    spans: InMemorySpanExporter, api: str, prompt: str
) -> None:
    agent = agents.Agent(
        name="guarded", model=MODEL, input_guardrails=[agents.input_guardrail(no_passwords)]
    )
    tripped = prompt != QUESTION
    if tripped:
        with pytest.raises(agents.InputGuardrailTripwireTriggered):
            run(agent, prompt)
    else:
        run(agent, prompt)
    (guardrail,) = [s for s in spans.get_finished_spans() if s.name.startswith("guardrail")]
    assert guardrail.name == "guardrail no_passwords"
    assert guardrail.attributes[sc.GUARDRAIL_NAME] == "no_passwords"
    assert guardrail.attributes[sc.GUARDRAIL_TRIGGERED] is tripped
    (agent_span,) = by_operation(spans, sc.OP_INVOKE_AGENT)
    assert parent_of(guardrail) == agent_span.context.span_id
