"""Curating runs: a whole trace or a whole session becomes a dataset item, and an experiment
replays a conversation item turn by turn with the task's own answers."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import pytest

from assay.collector.pipeline import Pipeline
from assay.collector.records.datasets import (
    promote_call,
    promote_session,
    promote_trace,
    read_dataset,
)
from assay.collector.settings import CollectorSettings
from assay.collector.spool import MemorySpool
from assay.collector.store.embedded import EmbeddedStore
from assay.evaluators import Dataset, exact_match
from assay.evaluators.experiment import evaluate
from assay.instrumentation import semconv as sc
from tests.collector.agent_traces import ANSWER, AgentRun, genai_run
from tests.collector.otlp_builders import make_request
from tests.conftest import RunningCollector

SETTINGS = CollectorSettings(
    flush_interval=0.05, retry_initial=0.01, retry_max=0.05, shutdown_timeout=5
)


def _text(role: str, text: str) -> str:
    return json.dumps([{"role": role, "parts": [{"type": "text", "content": text}]}])


def turn(session: str, question: str, answer: str) -> AgentRun:
    """A run of the conversation: its LLM calls asked `question` and finally answered `answer`."""
    run = genai_run(session=session)
    for span in (run.spans[1], run.spans[4]):
        for attribute in span.attributes:
            if attribute.key == sc.INPUT_MESSAGES:
                attribute.value.string_value = _text("user", question)
    for attribute in run.spans[4].attributes:
        if attribute.key == sc.OUTPUT_MESSAGES:
            attribute.value.string_value = _text("assistant", answer)
    return run


@pytest.fixture(scope="module")
def conversation(embedded_store: EmbeddedStore) -> tuple[str, list[AgentRun]]:
    session = f"conv-{uuid.uuid4().hex[:8]}"
    runs = [
        turn(session, "Where is my order A-17?", "It shipped yesterday."),
        turn(session, "When will it arrive?", "Tomorrow before noon."),
    ]
    pipeline = Pipeline(embedded_store, MemorySpool(10**8, max_age=0.02), SETTINGS)
    pipeline.start()
    for run in runs:
        request = make_request("curate", *run.spans)
        asyncio.run(pipeline.submit("traces", request.SerializeToString(), len(run.spans)))
        assert pipeline.flush(20)
    pipeline.stop()
    return session, runs


def test_a_trace_becomes_one_item_asking_its_goal_and_expecting_its_last_answer(
    embedded_store: EmbeddedStore, conversation: tuple[str, list[AgentRun]]
) -> None:
    _, runs = conversation
    name = f"runs-{uuid.uuid4().hex[:6]}"
    created = promote_trace(embedded_store, name, runs[1].trace_hex, {})
    assert created["input"] == [{"role": "user", "content": "When will it arrive?"}]
    assert created["expected"] == "Tomorrow before noon."
    assert created["metadata"]["level"] == "trace" and created["metadata"]["llm_calls"] == 2
    stored = read_dataset(embedded_store, name, None)
    assert stored is not None
    (item,) = stored["items"]
    assert item["source_trace_id"] == runs[1].trace_hex and item["source_span_id"] == ""
    with pytest.raises(LookupError):
        promote_trace(embedded_store, name, "0" * 32, {})


def test_a_session_becomes_a_conversation_item_replayed_turn_by_turn(
    embedded_store: EmbeddedStore, conversation: tuple[str, list[AgentRun]]
) -> None:
    session, _ = conversation
    name = f"conversations-{uuid.uuid4().hex[:6]}"
    created = promote_session(embedded_store, name, session, {})
    assert created["input"] == [
        {"role": "user", "content": "Where is my order A-17?"},
        {"role": "assistant", "content": "It shipped yesterday."},
        {"role": "user", "content": "When will it arrive?"},
    ]
    assert created["expected"] == "Tomorrow before noon."
    assert created["metadata"]["replay"] == "turns" and created["metadata"]["turns"] == 2

    stored = read_dataset(embedded_store, name, None)
    assert stored is not None
    dataset = Dataset(name, stored["items"])
    asked: list[list[dict[str, Any]]] = []

    def agent(messages: list[dict[str, Any]]) -> str:
        asked.append(messages)
        return "Tomorrow before noon." if len(messages) > 1 else "On its way."

    result = evaluate(dataset, agent, [exact_match()], record=False, progress=False)
    assert asked == [
        [{"role": "user", "content": "Where is my order A-17?"}],
        [
            {"role": "user", "content": "Where is my order A-17?"},
            {"role": "assistant", "content": "On its way."},  # the task's own answer
            {"role": "user", "content": "When will it arrive?"},
        ],
    ]
    (outcome,) = result.items
    assert outcome.output == "Tomorrow before noon."
    assert outcome.scores["exact_match"].passed is True


def test_a_call_is_still_promoted_alone(
    embedded_store: EmbeddedStore, conversation: tuple[str, list[AgentRun]]
) -> None:
    _, runs = conversation
    span_id = runs[0].spans[1].span_id.hex()
    created = promote_call(embedded_store, f"calls-{uuid.uuid4().hex[:6]}", span_id, {})
    assert created["input"] == [{"role": "user", "content": "Where is my order A-17?"}]
    assert created["expected"] == ANSWER and created["source_span_id"] == span_id


def test_the_api_promotes_a_call_a_trace_or_a_session(collector: RunningCollector) -> None:
    session = f"api-{uuid.uuid4().hex[:8]}"
    runs = [turn(session, "Hi?", "Hello."), turn(session, "Bye?", "Goodbye.")]
    for run in runs:
        response = httpx.post(
            f"{collector.http_url}/v1/traces",
            content=make_request("curate-api", *run.spans).SerializeToString(),
            headers={"Content-Type": "application/x-protobuf"},
        )
        assert response.status_code == 200
    collector.wait_for_rows(
        f"SELECT span_id FROM assay.llm_calls WHERE session_id = '{session}'", 4
    )
    url = f"{collector.http_url}/api/datasets/{session}/items"
    by_session = httpx.post(url, json={"session_id": session})
    assert by_session.status_code == 201, by_session.text
    assert by_session.json()["metadata"]["turns"] == 2
    by_trace = httpx.post(url, json={"trace_id": runs[0].trace_hex, "expected": "Hi!"})
    assert by_trace.status_code == 201 and by_trace.json()["expected"] == "Hi!"
    both = httpx.post(url, json={"trace_id": runs[0].trace_hex, "session_id": session})
    assert both.status_code == 400 and "span_id" in both.json()["error"]
    unknown = httpx.post(url, json={"session_id": "nobody"})
    assert unknown.status_code == 404
    dataset = httpx.get(f"{collector.http_url}/api/datasets/{session}").json()
    assert len(dataset["items"]) == 2
