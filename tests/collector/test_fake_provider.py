"""`assay fake-provider` as a user starts it: a process the real openai and anthropic clients talk
to, answering text, streams with usage, tool calls, and scripted or asked-for errors."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import anthropic
import openai
import pytest

from assay.collector.demo.fake_provider import FAIL_HEADER
from tests.conftest import free_port
from tests.fakes.provider_process import ASSAY, fake_provider_process

pytestmark = pytest.mark.subprocess

SCRIPT = [
    {"when": "capital of France", "reply": "Paris."},
    {"when": ["refund", "order 13"], "error": 429},
    {"when": "explode", "error": 500},
]
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "The weather in a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The address of an `assay fake-provider` process, started with a script file."""
    script = tmp_path_factory.mktemp("fake") / "script.json"
    script.write_text(json.dumps(SCRIPT))
    with fake_provider_process("--script", str(script)) as address:
        yield address


@pytest.fixture
def openai_client(provider: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{provider}/v1", api_key="any", max_retries=0)


@pytest.fixture
def anthropic_client(provider: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=provider, api_key="any", max_retries=0)


def ask(text: str) -> list[openai.types.chat.ChatCompletionMessageParam]:
    return [{"role": "user", "content": text}]


def test_openai_chat_answers_the_script_then_the_default(openai_client: openai.OpenAI) -> None:
    scripted = openai_client.chat.completions.create(
        model="gpt-4o-mini", messages=ask("What is the capital of France?")
    )
    assert scripted.choices[0].message.content == "Paris."
    assert scripted.model == "gpt-4o-mini-2024-07-18"
    other = openai_client.chat.completions.create(model="gpt-4o", messages=ask("Hello there"))
    assert "Hello there" in (other.choices[0].message.content or "")
    assert other.usage is not None and other.usage.completion_tokens > 0


def test_openai_streams_with_usage(openai_client: openai.OpenAI) -> None:
    stream = openai_client.chat.completions.create(
        model="gpt-4o-mini",
        messages=ask("What is the capital of France?"),
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Paris."
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0


def test_openai_tool_calls(openai_client: openai.OpenAI) -> None:
    answer = openai_client.chat.completions.create(
        model="gpt-4o-mini",
        messages=ask("Weather in Oslo?"),
        tools=[{"type": "function", "function": WEATHER_TOOL}],
    )
    assert answer.choices[0].finish_reason == "tool_calls"
    call = (answer.choices[0].message.tool_calls or [])[0]
    assert call.type == "function" and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Weather in Oslo?"}


def test_openai_answers_json_when_asked(openai_client: openai.OpenAI) -> None:
    schema = {
        "type": "object",
        "properties": {
            "intent": {"type": "string", "enum": ["refund", "status"]},
            "reply": {"type": "string"},
            "urgent": {"type": "boolean"},
        },
        "required": ["intent", "reply", "urgent"],
    }
    answer = openai_client.chat.completions.create(
        model="gpt-4o-mini",
        messages=ask("Where is my parcel?"),
        response_format={"type": "json_schema", "json_schema": {"name": "a", "schema": schema}},
    )
    shaped = json.loads(answer.choices[0].message.content or "")
    assert shaped["intent"] in ("refund", "status") and isinstance(shaped["urgent"], bool)
    assert "Where is my parcel?" in shaped["reply"]
    loose = openai_client.chat.completions.create(
        model="gpt-4o-mini", messages=ask("Hi"), response_format={"type": "json_object"}
    )
    assert set(json.loads(loose.choices[0].message.content or "")) == {"answer"}


def test_openai_errors_under_real_model_names(openai_client: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as limited:
        openai_client.chat.completions.create(
            model="gpt-4o", messages=ask("I want a refund for order 13")
        )
    assert "Rate limit reached for gpt-4o" in str(limited.value)
    with pytest.raises(openai.InternalServerError):
        openai_client.chat.completions.create(model="gpt-4o", messages=ask("explode"))
    with pytest.raises(openai.InternalServerError):
        openai_client.chat.completions.create(
            model="gpt-4o-mini", messages=ask("Hi"), extra_headers={FAIL_HEADER: "500"}
        )


def test_anthropic_messages_streams_and_tools(anthropic_client: anthropic.Anthropic) -> None:
    message = anthropic_client.messages.create(
        model="claude-haiku-4-5",
        max_tokens=200,
        system="Be brief.",
        messages=[{"role": "user", "content": "What is the capital of France?"}],
    )
    assert message.content[0].type == "text" and message.content[0].text == "Paris."
    with anthropic_client.messages.stream(
        model="claude-haiku-4-5", max_tokens=200, messages=[{"role": "user", "content": "Hi"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert "Hi" in text and final.usage.output_tokens > 0 and final.usage.input_tokens > 0
    tool_use = anthropic_client.messages.create(
        model="claude-haiku-4-5",
        max_tokens=200,
        tools=[
            {
                "name": WEATHER_TOOL["name"],
                "description": WEATHER_TOOL["description"],
                "input_schema": WEATHER_TOOL["parameters"],
            }
        ],
        messages=[{"role": "user", "content": "Weather in Oslo?"}],
    )
    assert tool_use.stop_reason == "tool_use"
    assert tool_use.content[0].type == "tool_use" and tool_use.content[0].name == "get_weather"


def test_anthropic_errors_under_real_model_names(anthropic_client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.RateLimitError):
        anthropic_client.messages.create(
            model="claude-sonnet-4-5",
            max_tokens=100,
            messages=[{"role": "user", "content": "refund for order 13 please"}],
        )
    with pytest.raises(anthropic.OverloadedError):
        anthropic_client.messages.create(
            model="claude-sonnet-4-5",
            max_tokens=100,
            messages=[{"role": "user", "content": "Hi"}],
            extra_headers={FAIL_HEADER: "529"},
        )


def test_a_bad_script_is_refused_with_the_reason(tmp_path: Path) -> None:
    script = tmp_path / "script.json"
    script.write_text(json.dumps([{"when": "x", "error": "soon"}]))
    done = subprocess.run(
        [str(ASSAY), "fake-provider", "--port", str(free_port()), "--script", str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "entry 1 needs `reply` (a text) or `error` (an HTTP status)" in done.stderr
