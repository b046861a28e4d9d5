"""CPU per OpenAI Agents SDK run added by Assay's agent instrumentation (its tracing processor).

One run: an agent with one function tool against the local fake OpenAI API (Responses API), so
two model calls, one tool call, and the SDK's trace, agent, response and function spans. Three
set-ups, interleaved round by round: the SDK with no processor (its tracing still creates its
spans), Assay's processor alone (the client not instrumented: the SDK's records become the LLM
spans), and Assay's processor with the openai client instrumented (the client's spans are the LLM
spans). Spans go to a no-op exporter, so the figure is what the application thread pays (the OTLP
encoder's share runs in the export thread). Process CPU time per run, the median of the rounds:
compare within one run only (the machine is shared).

    .venv/bin/python bench/agents_overhead.py [--runs 200] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Sequence

import agents
from openai import AsyncOpenAI
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from assay.collector.demo.fake_openai import FakeOpenAI
from assay.instrumentation.providers.openai import OpenAIInstrumentor
from assay.instrumentation.providers.openai_agents import OpenAIAgentsInstrumentor


class _Dropped(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


@agents.function_tool
def get_weather(city: str) -> str:
    """The weather of a city."""
    return f"sunny in {city}"


async def cpu_per_run(agent: agents.Agent, runs: int) -> float:
    start = time.process_time()
    for _ in range(runs):
        await agents.Runner.run(agent, "What is the weather in Paris?")
    return (time.process_time() - start) / runs * 1e6


async def measure(runs: int, rounds: int) -> dict[str, list[float]]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(_Dropped()))
    agents_instrumentor = OpenAIAgentsInstrumentor()
    openai_instrumentor = OpenAIInstrumentor()
    figures: dict[str, list[float]] = {
        "sdk alone": [],
        "assay, sdk records": [],
        "assay + openai": [],
    }
    with FakeOpenAI() as fake:
        # One client, one event loop: its connections belong to the loop that opened them.
        client = AsyncOpenAI(base_url=fake.base_url, api_key="k", max_retries=0)
        agents.set_default_openai_client(client, use_for_tracing=False)
        agent = agents.Agent(name="weather", tools=[get_weather], model="gpt-4o-mini")
        agents.set_trace_processors([])
        await cpu_per_run(agent, 10)  # warm up imports and connections
        for _ in range(rounds):
            agents.set_trace_processors([])
            figures["sdk alone"].append(await cpu_per_run(agent, runs))
            agents_instrumentor.instrument(tracer_provider=provider, capture_content=True)
            agents.set_trace_processors([agents_instrumentor.processor])
            figures["assay, sdk records"].append(await cpu_per_run(agent, runs))
            openai_instrumentor.instrument(tracer_provider=provider, capture_content=True)
            figures["assay + openai"].append(await cpu_per_run(agent, runs))
            openai_instrumentor.uninstrument()
            agents_instrumentor.uninstrument()
        await client.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    figures = asyncio.run(measure(args.runs, args.rounds))
    base = statistics.median(figures["sdk alone"])
    print(f"{'set-up':<22}{'CPU µs per run':>16}{'added':>10}")
    for name, values in figures.items():
        median = statistics.median(values)
        print(f"{name:<22}{median:>16,.0f}{median - base:>+10,.0f}")


if __name__ == "__main__":
    main()
