"""`context(...)`: ambient attributes on every LLM span, across nesting, tasks and threads."""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from openai import AsyncOpenAI, OpenAI
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from assay.collector.demo.fake_openai import FakeOpenAI
from assay.instrumentation import context, semconv
from assay.instrumentation._context import current_attributes

MODEL = "gpt-4o-mini"


def ask(client: OpenAI, question: str) -> None:
    client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": question}])


def by_question(exporter: InMemorySpanExporter) -> dict[str, Any]:
    """Span attributes keyed by the question each call asked."""
    result = {}
    for span in exporter.get_finished_spans():
        messages = span.attributes[semconv.INPUT_MESSAGES]
        question = messages.split('"content":"', 1)[1].split('"', 1)[0]
        result[question] = span.attributes
    return result


def test_every_argument_is_a_context_attribute() -> None:
    assert set(inspect.signature(context).parameters) == set(semconv.CONTEXT_ATTRIBUTES)


def test_stamps_every_attribute(
    spans: InMemorySpanExporter, client: OpenAI, only_span: Any
) -> None:
    with context(
        user_id="user-7",
        session_id="session-3",
        prompt_name="support-answer",
        prompt_version=4,
        tags=["beta", "eu"],
        experiment_id="exp-1",
        dataset_item_id="item-9",
    ):
        ask(client, "hello")

    attrs = only_span().attributes
    assert attrs[semconv.USER_ID] == "user-7"
    assert attrs[semconv.SESSION_ID] == "session-3"
    assert attrs[semconv.PROMPT_NAME] == "support-answer"
    assert attrs[semconv.PROMPT_VERSION] == "4"
    assert attrs[semconv.TAGS] == ("beta", "eu")
    assert attrs[semconv.EXPERIMENT_ID] == "exp-1"
    assert attrs[semconv.DATASET_ITEM_ID] == "item-9"


def test_nothing_outside_a_context(
    spans: InMemorySpanExporter, client: OpenAI, only_span: Any
) -> None:
    with context(user_id="someone"):
        pass
    ask(client, "alone")

    attrs = only_span().attributes
    assert not set(semconv.CONTEXT_ATTRIBUTES.values()) & set(attrs)


def test_nested_contexts_merge_and_the_inner_wins(
    spans: InMemorySpanExporter, client: OpenAI
) -> None:
    with context(user_id="outer-user", session_id="s1", tags=["outer"]):
        ask(client, "before")
        with context(user_id="inner-user", prompt_name="p"):
            ask(client, "inner")
            with context(tags=["innermost"]):
                ask(client, "innermost")
        ask(client, "after")

    calls = by_question(spans)
    assert calls["before"][semconv.USER_ID] == "outer-user"
    assert calls["inner"][semconv.USER_ID] == "inner-user"
    assert calls["inner"][semconv.SESSION_ID] == "s1"
    assert calls["inner"][semconv.PROMPT_NAME] == "p"
    assert calls["inner"][semconv.TAGS] == ("outer",)
    assert calls["innermost"][semconv.TAGS] == ("innermost",)
    assert calls["innermost"][semconv.USER_ID] == "inner-user"
    assert calls["after"][semconv.USER_ID] == "outer-user"
    assert semconv.PROMPT_NAME not in calls["after"]


def test_a_lone_string_is_one_tag() -> None:
    with context(tags="nightly"):
        assert current_attributes()[semconv.TAGS] == ("nightly",)


def test_restored_after_an_exception() -> None:
    try:
        with context(user_id="u"):
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert current_attributes() == {}


def test_asyncio_gather_tasks(spans: InMemorySpanExporter, fake: FakeOpenAI) -> None:
    async def ask_async(client: AsyncOpenAI, question: str, user: str | None = None) -> None:
        if user is None:
            await client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": question}]
            )
            return
        async with context(user_id=user):
            await ask_async(client, question)

    async def main() -> None:
        async with AsyncOpenAI(base_url=fake.base_url, api_key="k", max_retries=0) as client:
            with context(session_id="conversation-1"):
                await asyncio.gather(
                    ask_async(client, "first", user="alice"),
                    ask_async(client, "second", user="bob"),
                    ask_async(client, "third"),
                )

    asyncio.run(main())

    calls = by_question(spans)
    assert {q: a[semconv.SESSION_ID] for q, a in calls.items()} == {
        "first": "conversation-1",
        "second": "conversation-1",
        "third": "conversation-1",
    }
    assert calls["first"][semconv.USER_ID] == "alice"
    assert calls["second"][semconv.USER_ID] == "bob"
    assert semconv.USER_ID not in calls["third"]


def test_thread_pool_with_a_copied_context(spans: InMemorySpanExporter, client: OpenAI) -> None:
    with context(user_id="pooled"), ThreadPoolExecutor(max_workers=3) as pool:
        futures = [
            pool.submit(contextvars.copy_context().run, ask, client, f"q{i}") for i in range(3)
        ]
        for future in futures:
            future.result()

    calls = by_question(spans)
    assert {q: a[semconv.USER_ID] for q, a in calls.items()} == {
        "q0": "pooled",
        "q1": "pooled",
        "q2": "pooled",
    }


def test_a_plain_thread_starts_without_it(spans: InMemorySpanExporter, client: OpenAI) -> None:
    # Documented: contextvars do not flow into new threads unless the context is handed over.
    with context(user_id="main-thread"):
        plain = threading.Thread(target=ask, args=(client, "plain"))
        handed = threading.Thread(
            target=contextvars.copy_context().run, args=(ask, client, "handed")
        )
        for thread in (plain, handed):
            thread.start()
            thread.join()

    calls = by_question(spans)
    if not getattr(sys.flags, "thread_inherit_context", False):  # Python 3.14 may opt in
        assert semconv.USER_ID not in calls["plain"]
    assert calls["handed"][semconv.USER_ID] == "main-thread"


def test_reentering_the_same_context_object() -> None:
    shared = context(user_id="again")
    with shared:
        with shared:
            assert current_attributes()[semconv.USER_ID] == "again"
        assert current_attributes()[semconv.USER_ID] == "again"
    assert current_attributes() == {}
