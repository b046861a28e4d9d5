"""Concurrent calls, in asyncio tasks and in threads: each span is its own caller's, whole.

Each call is made inside a span of its caller, with a question only it asks: its LLM span must
be that caller's child, carry that question and the answer to it (the fake answers by quoting
the last user message), and no call may be without its span or have two. Half of the calls
stream, as a stream's span ends in whatever task or thread reads its last chunk.
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

from openai import AsyncOpenAI, OpenAI
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from assay.collector.demo.fake_openai import FakeOpenAI
from assay.instrumentation import semconv

MODEL = "gpt-4o-mini"
TASKS = 50
THREADS = 8
CALLS_PER_THREAD = 6


def question(number: int) -> str:
    return f"question <{number}>"  # no question's text is inside another's


def chat(number: int) -> dict[str, Any]:
    options: dict[str, Any] = {"stream": True} if number % 2 else {}
    return {
        "model": MODEL,
        "messages": [{"role": "user", "content": question(number)}],
        **options,
    }


def assert_each_call_is_its_callers(spans: list[ReadableSpan], calls: int) -> None:
    callers = {s.context.span_id: s for s in spans if s.name.startswith("caller ")}
    llm_spans = [s for s in spans if s.name == f"chat {MODEL}"]
    assert len(callers) == calls
    assert len(llm_spans) == calls
    children: set[int] = set()
    for span in llm_spans:
        assert span.parent is not None
        caller = callers[span.parent.span_id]  # a caller's span, not another call's
        assert caller.context.trace_id == span.context.trace_id
        children.add(span.parent.span_id)
        number = int(caller.name.removeprefix("caller "))
        attributes = span.attributes or {}
        prompt = str(attributes[semconv.INPUT_MESSAGES])
        answer = json.loads(str(attributes[semconv.OUTPUT_MESSAGES]))[0]["parts"][0]["content"]
        assert question(number) in prompt
        assert question(number) in answer
        others = [question(n) for n in range(calls) if n != number]
        assert not any(other in prompt or other in answer for other in others)
    assert children == set(callers)  # one call under each caller


def test_asyncio_tasks(
    spans: InMemorySpanExporter, tracer_provider: TracerProvider, fake: FakeOpenAI
) -> None:
    tracer = tracer_provider.get_tracer("app")

    async def caller(client: AsyncOpenAI, number: int) -> None:
        with tracer.start_as_current_span(f"caller {number}"):
            response = await client.chat.completions.create(**chat(number))
            if number % 2:
                async for _chunk in response:
                    await asyncio.sleep(0)  # let the other tasks read theirs in between

    async def main() -> None:
        async with AsyncOpenAI(base_url=fake.base_url, api_key="k", max_retries=0) as client:
            await asyncio.gather(*(caller(client, n) for n in range(TASKS)))

    asyncio.run(main())

    assert_each_call_is_its_callers(list(spans.get_finished_spans()), TASKS)


def test_threads(
    spans: InMemorySpanExporter, tracer_provider: TracerProvider, fake: FakeOpenAI
) -> None:
    tracer = tracer_provider.get_tracer("app")
    start = threading.Barrier(THREADS)
    failures: list[BaseException] = []

    def worker(client: OpenAI, thread: int) -> None:
        try:
            start.wait()  # every thread calls at once
            for call in range(CALLS_PER_THREAD):
                number = thread * CALLS_PER_THREAD + call
                with tracer.start_as_current_span(f"caller {number}"):
                    response = client.chat.completions.create(**chat(number))
                    if number % 2:
                        for _chunk in response:
                            pass
        except BaseException as error:  # reported by the test's thread
            failures.append(error)

    with OpenAI(base_url=fake.base_url, api_key="k", max_retries=0) as client:
        threads = [threading.Thread(target=worker, args=(client, t)) for t in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    assert not failures, failures
    assert_each_call_is_its_callers(list(spans.get_finished_spans()), THREADS * CALLS_PER_THREAD)
