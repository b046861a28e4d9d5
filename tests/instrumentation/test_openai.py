"""OpenAI instrumentation: one GenAI span per call, the user's call unchanged."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import openai
import pydantic
import pytest
from openai import AsyncOpenAI, AzureOpenAI, OpenAI
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from assay.collector.demo.fake_openai import FAIL_429, FAIL_500, FakeOpenAI
from assay.instrumentation import instrument, pricing, semconv, uninstrument
from assay.instrumentation.providers import _call, _chat_chunks
from assay.instrumentation.providers import openai as openai_provider
from assay.instrumentation.providers._request import EndpointCache

MODEL = "gpt-4o-mini"
DATED_MODEL = "gpt-4o-mini-2024-07-18"
EMBEDDING_MODEL = "text-embedding-3-small"
QUESTION = [
    {"role": "system", "content": "You answer in one paragraph."},
    {"role": "user", "content": "Why is the sky blue?"},
]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}

ANY_CONTENT = (semconv.INPUT_MESSAGES, semconv.OUTPUT_MESSAGES, semconv.TOOL_DEFINITIONS)


def async_client(fake: FakeOpenAI) -> AsyncOpenAI:
    return AsyncOpenAI(base_url=fake.base_url, api_key="test-key", max_retries=0)


def expected_cost(response: Any) -> float | None:
    usage = response.usage
    details = usage.prompt_tokens_details
    return pricing.cost_usd(
        response.model,
        usage.prompt_tokens,
        usage.completion_tokens,
        cached_input_tokens=details.cached_tokens if details else None,
        provider=semconv.PROVIDER_OPENAI,
    )


class TestChatCompletion:
    def test_one_client_span_per_the_genai_conventions(
        self, spans: InMemorySpanExporter, client: OpenAI, fake: FakeOpenAI, only_span: Any
    ) -> None:
        response = client.chat.completions.create(
            model=MODEL,
            messages=QUESTION,
            temperature=0.2,
            top_p=0.9,
            max_tokens=200,
            seed=7,
            stop=["\n\n"],
            frequency_penalty=0.1,
            presence_penalty=0.3,
        )

        span = only_span()
        attrs = span.attributes
        assert span.name == f"chat {MODEL}"
        assert span.kind is SpanKind.CLIENT
        assert span.status.status_code is StatusCode.UNSET
        assert attrs[semconv.OPERATION_NAME] == semconv.OP_CHAT
        assert attrs[semconv.PROVIDER_NAME] == semconv.PROVIDER_OPENAI
        assert attrs[semconv.SERVER_ADDRESS] == "127.0.0.1"
        assert attrs[semconv.SERVER_PORT] == int(fake.base_url.split(":")[2].split("/")[0])
        assert attrs[semconv.REQUEST_MODEL] == MODEL
        assert attrs[semconv.REQUEST_TEMPERATURE] == 0.2
        assert attrs[semconv.REQUEST_TOP_P] == 0.9
        assert attrs[semconv.REQUEST_MAX_TOKENS] == 200
        assert attrs[semconv.REQUEST_SEED] == 7
        assert attrs[semconv.REQUEST_STOP_SEQUENCES] == ("\n\n",)
        assert attrs[semconv.REQUEST_FREQUENCY_PENALTY] == 0.1
        assert attrs[semconv.REQUEST_PRESENCE_PENALTY] == 0.3
        assert attrs[semconv.REQUEST_STREAM] is False
        assert semconv.REQUEST_CHOICE_COUNT not in attrs
        assert attrs[semconv.RESPONSE_ID] == response.id
        assert attrs[semconv.RESPONSE_MODEL] == response.model == DATED_MODEL
        assert attrs[semconv.RESPONSE_FINISH_REASONS] == ("stop",)
        assert attrs[semconv.USAGE_REPORTED] is True
        assert attrs[semconv.USAGE_INPUT_TOKENS] == response.usage.prompt_tokens
        assert attrs[semconv.USAGE_OUTPUT_TOKENS] == response.usage.completion_tokens
        assert semconv.RESPONSE_TIME_TO_FIRST_CHUNK not in attrs
        assert semconv.ERROR_TYPE not in attrs

    def test_messages_in_the_genai_json_shape(
        self, spans: InMemorySpanExporter, client: OpenAI, only_span: Any
    ) -> None:
        response = client.chat.completions.create(model=MODEL, messages=QUESTION)

        attrs = only_span().attributes
        assert json.loads(attrs[semconv.INPUT_MESSAGES]) == [
            {"role": "system", "parts": [{"type": "text", "content": QUESTION[0]["content"]}]},
            {"role": "user", "parts": [{"type": "text", "content": QUESTION[1]["content"]}]},
        ]
        assert json.loads(attrs[semconv.OUTPUT_MESSAGES]) == [
            {
                "role": "assistant",
                "parts": [{"type": "text", "content": response.choices[0].message.content}],
                "finish_reason": "stop",
            }
        ]

    def test_cached_tokens_and_cost_of_the_response_model(
        self, spans: InMemorySpanExporter, only_span: Any
    ) -> None:
        with (
            FakeOpenAI(cache_min_tokens=1) as fake,
            OpenAI(base_url=fake.base_url, api_key="k", max_retries=0) as client,
        ):
            response = client.chat.completions.create(model=MODEL, messages=QUESTION)

        attrs = only_span().attributes
        cached = response.usage.prompt_tokens_details.cached_tokens
        assert cached > 0
        assert attrs[semconv.USAGE_CACHE_READ_INPUT_TOKENS] == cached
        cost = expected_cost(response)
        assert cost is not None and cost > 0
        assert attrs[semconv.COST_USD] == pytest.approx(cost)

    def test_unknown_model_has_no_cost_rather_than_zero(
        self, spans: InMemorySpanExporter, client: OpenAI, only_span: Any
    ) -> None:
        client.chat.completions.create(model="house-model-xl", messages=QUESTION)

        attrs = only_span().attributes
        assert attrs[semconv.USAGE_INPUT_TOKENS] > 0
        assert semconv.COST_USD not in attrs

    def test_several_choices(
        self, spans: InMemorySpanExporter, client: OpenAI, only_span: Any
    ) -> None:
        response = client.chat.completions.create(model=MODEL, messages=QUESTION, n=2)

        attrs = only_span().attributes
        assert attrs[semconv.REQUEST_CHOICE_COUNT] == 2
        assert attrs[semconv.RESPONSE_FINISH_REASONS] == ("stop", "stop")
        texts = [m["parts"][0]["content"] for m in json.loads(attrs[semconv.OUTPUT_MESSAGES])]
        assert texts == [choice.message.content for choice in response.choices]

    def test_length_finish_reason(
        self, spans: InMemorySpanExporter, client: OpenAI, only_span: Any
    ) -> None:
        client.chat.completions.create(model=MODEL, messages=QUESTION, max_completion_tokens=5)

        attrs = only_span().attributes
        assert attrs[semconv.REQUEST_MAX_TOKENS] == 5
        assert attrs[semconv.RESPONSE_FINISH_REASONS] == ("length",)

    def test_async(self, spans: InMemorySpanExporter, fake: FakeOpenAI, only_span: Any) -> None:
        async def call() -> Any:
            async with async_client(fake) as client:
                return await client.chat.completions.create(model=MODEL, messages=QUESTION)

        response = asyncio.run(call())

        span = only_span()
        attrs = span.attributes
        assert span.name == f"chat {MODEL}"
        assert span.kind is SpanKind.CLIENT
        assert attrs[semconv.RESPONSE_ID] == response.id
        assert attrs[semconv.RESPONSE_MODEL] == DATED_MODEL
        assert attrs[semconv.USAGE_OUTPUT_TOKENS] == response.usage.completion_tokens
        assert attrs[semconv.COST_USD] == pytest.approx(expected_cost(response))
        assert json.loads(attrs[semconv.OUTPUT_MESSAGES])[0]["parts"][0]["content"] == (
            response.choices[0].message.content
        )

    def test_span_is_a_child_of_the_current_span(
        self,
        spans: InMemorySpanExporter,
        client: OpenAI,
        tracer_provider: TracerProvider,
    ) -> None:
        tracer = tracer_provider.get_tracer("test")
        with tracer.start_as_current_span("handle request") as parent:
            client.chat.completions.create(model=MODEL, messages=QUESTION)

        llm = next(s for s in spans.get_finished_spans() if s.name.startswith("chat"))
        assert llm.parent is not None
        assert llm.parent.span_id == parent.get_span_context().span_id

    def test_parse_is_one_span(self, spans: InMemorySpanExporter, only_span: Any) -> None:
        class Answer(pydantic.BaseModel):
            answer: str

        reply = json.dumps({"answer": "Rayleigh scattering"})
        with (
            FakeOpenAI(reply=lambda request: reply) as fake,
            OpenAI(base_url=fake.base_url, api_key="k", max_retries=0) as client,
        ):
            parsed = client.chat.completions.parse(
                model=MODEL, messages=QUESTION, response_format=Answer
            )

        assert parsed.choices[0].message.parsed == Answer(answer="Rayleigh scattering")
        attrs = only_span().attributes
        assert attrs[semconv.USAGE_OUTPUT_TOKENS] == parsed.usage.completion_tokens
        assert json.loads(attrs[semconv.OUTPUT_MESSAGES])[0]["parts"][0]["content"] == reply

    def test_with_raw_response(
        self, spans: InMemorySpanExporter, client: OpenAI, only_span: Any
    ) -> None:
        raw = client.chat.completions.with_raw_response.create(model=MODEL, messages=QUESTION)
        response = raw.parse()

        attrs = only_span().attributes
        assert attrs[semconv.RESPONSE_ID] == response.id
        assert attrs[semconv.USAGE_INPUT_TOKENS] == response.usage.prompt_tokens


class TestToolCalls:
    def test_tool_call_and_tool_result_messages(
        self, spans: InMemorySpanExporter, client: OpenAI
    ) -> None:
        ask = [{"role": "user", "content": "Weather in Paris?"}]
        first = client.chat.completions.create(model=MODEL, messages=ask, tools=[WEATHER_TOOL])
        tool_call = first.choices[0].message.tool_calls[0]
        followup = [
            *ask,
            first.choices[0].message,  # a response object handed back, as users do
            {"role": "tool", "tool_call_id": tool_call.id, "content": "18°C, sunny"},
        ]
        client.chat.completions.create(model=MODEL, messages=followup, tools=[WEATHER_TOOL])

        call_span, result_span = spans.get_finished_spans()
        attrs = call_span.attributes
        assert attrs[semconv.RESPONSE_FINISH_REASONS] == ("tool_calls",)
        assert json.loads(attrs[semconv.OUTPUT_MESSAGES]) == [
            {
                "role": "assistant",
                "parts": [
                    {
                        "type": "tool_call",
                        "id": tool_call.id,
                        "name": "get_weather",
                        "arguments": tool_call.function.arguments,
                    }
                ],
                "finish_reason": "tool_calls",
            }
        ]
        assert json.loads(attrs[semconv.TOOL_DEFINITIONS]) == [
            {
                "type": "function",
                "name": "get_weather",
                "description": "Current weather for a city",
                "parameters": WEATHER_TOOL["function"]["parameters"],
            }
        ]
        messages = json.loads(result_span.attributes[semconv.INPUT_MESSAGES])
        assert messages[1] == {
            "role": "assistant",
            "parts": [
                {
                    "type": "tool_call",
                    "id": tool_call.id,
                    "name": "get_weather",
                    "arguments": tool_call.function.arguments,
                }
            ],
        }
        assert messages[2] == {
            "role": "tool",
            "parts": [
                {"type": "tool_call_response", "id": tool_call.id, "response": "18°C, sunny"}
            ],
        }
        assert result_span.attributes[semconv.RESPONSE_FINISH_REASONS] == ("stop",)

    def test_multimodal_parts(
        self, spans: InMemorySpanExporter, client: OpenAI, only_span: Any
    ) -> None:
        content = [
            {"type": "text", "text": "What is in these images?"},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64," + "A" * 5000}},
        ]
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": content}])

        (message,) = json.loads(only_span().attributes[semconv.INPUT_MESSAGES])
        assert message["parts"] == [
            {"type": "text", "content": "What is in these images?"},
            {"type": "uri", "modality": "image", "uri": "https://example.com/cat.png"},
            {"type": "blob", "modality": "image", "mime_type": "image/png"},
        ]


class TestEmbeddings:
    def test_sync(
        self, spans: InMemorySpanExporter, client: OpenAI, fake: FakeOpenAI, only_span: Any
    ) -> None:
        response = client.embeddings.create(model=EMBEDDING_MODEL, input=["hello world", "bye"])

        # The client asks for base64 unless told otherwise, and decodes it for the user.
        assert fake.requests[-1]["encoding_format"] == "base64"
        assert isinstance(response.data[0].embedding, list)

        span = only_span()
        attrs = span.attributes
        assert span.name == f"embeddings {EMBEDDING_MODEL}"
        assert span.kind is SpanKind.CLIENT
        assert attrs[semconv.OPERATION_NAME] == semconv.OP_EMBEDDINGS
        assert attrs[semconv.PROVIDER_NAME] == semconv.PROVIDER_OPENAI
        assert attrs[semconv.REQUEST_MODEL] == EMBEDDING_MODEL
        assert attrs[semconv.RESPONSE_MODEL] == EMBEDDING_MODEL
        assert attrs[semconv.USAGE_INPUT_TOKENS] == response.usage.prompt_tokens
        assert semconv.USAGE_OUTPUT_TOKENS not in attrs
        assert attrs[semconv.EMBEDDINGS_DIMENSION_COUNT] == len(response.data[0].embedding) == 1536
        assert semconv.REQUEST_ENCODING_FORMATS not in attrs
        cost = pricing.cost_usd(
            EMBEDDING_MODEL, response.usage.prompt_tokens, None, provider="openai"
        )
        assert attrs[semconv.COST_USD] == pytest.approx(cost)

    def test_request_parameters(
        self, spans: InMemorySpanExporter, client: OpenAI, fake: FakeOpenAI, only_span: Any
    ) -> None:
        response = client.embeddings.create(
            model=EMBEDDING_MODEL, input="hello", dimensions=256, encoding_format="float"
        )

        attrs = only_span().attributes
        assert len(response.data[0].embedding) == 256
        assert attrs[semconv.EMBEDDINGS_DIMENSION_COUNT] == 256
        assert attrs[semconv.REQUEST_ENCODING_FORMATS] == ("float",)
        assert fake.requests[-1]["encoding_format"] == "float"

    def test_async(self, spans: InMemorySpanExporter, fake: FakeOpenAI, only_span: Any) -> None:
        async def call() -> Any:
            async with async_client(fake) as client:
                return await client.embeddings.create(model=EMBEDDING_MODEL, input="hello")

        response = asyncio.run(call())

        attrs = only_span().attributes
        assert attrs[semconv.OPERATION_NAME] == semconv.OP_EMBEDDINGS
        assert attrs[semconv.USAGE_INPUT_TOKENS] == response.usage.prompt_tokens


class TestProviderDetection:
    def test_azure_client(
        self, spans: InMemorySpanExporter, fake: FakeOpenAI, only_span: Any
    ) -> None:
        endpoint = fake.base_url.removesuffix("/v1")
        with AzureOpenAI(
            azure_endpoint=endpoint, api_key="k", api_version="2024-10-21", max_retries=0
        ) as client:
            client.chat.completions.create(model="my-deployment", messages=QUESTION)

        attrs = only_span().attributes
        assert attrs[semconv.PROVIDER_NAME] == semconv.PROVIDER_AZURE_OPENAI
        assert attrs[semconv.SERVER_ADDRESS] == "127.0.0.1"

    @pytest.mark.parametrize(
        ("base_url", "provider", "address", "port"),
        [
            ("https://api.openai.com/v1/", semconv.PROVIDER_OPENAI, "api.openai.com", 443),
            (
                "https://acme.openai.azure.com/openai/",
                semconv.PROVIDER_AZURE_OPENAI,
                "acme.openai.azure.com",
                443,
            ),
            ("http://localhost:11434/v1/", semconv.PROVIDER_OLLAMA, "localhost", 11434),
            ("http://gpu-box:11434/v1", semconv.PROVIDER_OLLAMA, "gpu-box", 11434),
            ("http://127.0.0.1:8000/v1", semconv.PROVIDER_VLLM, "127.0.0.1", 8000),
            ("http://localhost:8080/v1", semconv.PROVIDER_OPENAI, "localhost", 8080),
            ("https://api.groq.com/openai/v1", semconv.PROVIDER_GROQ, "api.groq.com", 443),
            ("https://api.together.xyz/v1", semconv.PROVIDER_TOGETHER_AI, "api.together.xyz", 443),
            ("https://api.deepseek.com", semconv.PROVIDER_DEEPSEEK, "api.deepseek.com", 443),
            ("https://openrouter.ai/api/v1", semconv.PROVIDER_OPENROUTER, "openrouter.ai", 443),
            ("https://api.mistral.ai/v1", semconv.PROVIDER_MISTRAL_AI, "api.mistral.ai", 443),
            (
                "https://acme.cognitiveservices.azure.com/openai/",
                semconv.PROVIDER_AZURE_OPENAI,
                "acme.cognitiveservices.azure.com",
                443,
            ),
            # A look-alike host is not the provider.
            (
                "https://api.groq.com.evil.test/v1",
                semconv.PROVIDER_OPENAI,
                "api.groq.com.evil.test",
                443,
            ),
        ],
    )
    def test_from_base_url(self, base_url: str, provider: str, address: str, port: int) -> None:
        client = OpenAI(base_url=base_url, api_key="k")

        endpoint = EndpointCache(openai_provider.detect_endpoint).get(client.chat.completions)

        assert endpoint.provider == provider
        assert endpoint.server[semconv.SERVER_ADDRESS] == address
        assert endpoint.server[semconv.SERVER_PORT] == port

    def test_cached_per_client_until_the_base_url_changes(self) -> None:
        client = OpenAI(base_url="https://api.openai.com/v1/", api_key="k")
        cache = EndpointCache(openai_provider.detect_endpoint)

        first = cache.get(client.chat.completions)
        assert cache.get(client.embeddings) is first
        client.base_url = "https://acme.openai.azure.com/openai/"
        assert cache.get(client.chat.completions).provider == semconv.PROVIDER_AZURE_OPENAI


class TestErrors:
    @pytest.mark.parametrize(
        ("model", "error_class"),
        [(FAIL_429, openai.RateLimitError), (FAIL_500, openai.InternalServerError)],
    )
    def test_sync_error_span_and_same_exception(
        self,
        instrument_with: Callable[..., TracerProvider],
        span_exporter: InMemorySpanExporter,
        client: OpenAI,
        model: str,
        error_class: type[Exception],
    ) -> None:
        def call() -> Any:
            return client.chat.completions.create(model=model, messages=QUESTION)

        with pytest.raises(error_class) as bare:
            call()
        instrument_with()
        with pytest.raises(error_class) as traced:
            call()

        assert type(traced.value) is type(bare.value)
        assert traced.value.status_code == bare.value.status_code
        (span,) = span_exporter.get_finished_spans()
        assert span.status.status_code is StatusCode.ERROR
        assert span.attributes[semconv.ERROR_TYPE] == error_class.__qualname__
        assert span.name == f"chat {model}"
        (event,) = span.events
        assert event.name == "exception"
        assert semconv.USAGE_INPUT_TOKENS not in span.attributes

    @pytest.mark.parametrize(
        ("model", "error_class"),
        [(FAIL_429, openai.RateLimitError), (FAIL_500, openai.InternalServerError)],
    )
    def test_async_error_span_and_same_exception(
        self,
        spans: InMemorySpanExporter,
        fake: FakeOpenAI,
        model: str,
        error_class: type[Exception],
        only_span: Any,
    ) -> None:
        async def call() -> None:
            async with async_client(fake) as client:
                await client.embeddings.create(model=model, input="x")

        with pytest.raises(error_class):
            asyncio.run(call())

        span = only_span()
        assert span.status.status_code is StatusCode.ERROR
        assert span.attributes[semconv.ERROR_TYPE] == error_class.__qualname__

    def test_connection_refused(self, spans: InMemorySpanExporter, only_span: Any) -> None:
        with FakeOpenAI() as fake:
            base_url = fake.base_url  # the port is closed once the fake stops
        with (
            OpenAI(base_url=base_url, api_key="k", max_retries=0) as client,
            pytest.raises(openai.APIConnectionError),
        ):
            client.chat.completions.create(model=MODEL, messages=QUESTION)

        assert only_span().attributes[semconv.ERROR_TYPE] == "APIConnectionError"

    def test_client_side_validation_error_passes_through(
        self, spans: InMemorySpanExporter, client: OpenAI
    ) -> None:
        class Answer(pydantic.BaseModel):
            answer: str

        with pytest.raises(TypeError, match="parse"):
            client.chat.completions.create(model=MODEL, messages=QUESTION, response_format=Answer)

        (span,) = spans.get_finished_spans()
        assert span.attributes[semconv.ERROR_TYPE] == "TypeError"


class TestContentCapture:
    def test_env_false_drops_content_but_keeps_tokens(
        self,
        instrument_with: Callable[..., TracerProvider],
        client: OpenAI,
        monkeypatch: pytest.MonkeyPatch,
        only_span: Any,
    ) -> None:
        monkeypatch.setenv("ASSAY_CAPTURE_CONTENT", "false")
        instrument_with()

        response = client.chat.completions.create(
            model=MODEL, messages=QUESTION, tools=[WEATHER_TOOL]
        )

        attrs = only_span().attributes
        assert not set(ANY_CONTENT) & set(attrs)
        assert attrs[semconv.USAGE_INPUT_TOKENS] == response.usage.prompt_tokens
        assert attrs[semconv.USAGE_OUTPUT_TOKENS] == response.usage.completion_tokens
        assert attrs[semconv.RESPONSE_FINISH_REASONS] == ("tool_calls",)

    def test_argument_wins_over_env(
        self,
        instrument_with: Callable[..., TracerProvider],
        client: OpenAI,
        monkeypatch: pytest.MonkeyPatch,
        only_span: Any,
    ) -> None:
        monkeypatch.setenv("ASSAY_CAPTURE_CONTENT", "false")
        instrument_with(capture_content=True)

        client.chat.completions.create(model=MODEL, messages=QUESTION)

        assert semconv.INPUT_MESSAGES in only_span().attributes


def _chat_dump(client: OpenAI) -> dict[str, Any]:
    return client.chat.completions.create(model=MODEL, messages=QUESTION).model_dump()


def _tool_dump(client: OpenAI) -> dict[str, Any]:
    messages = [{"role": "user", "content": "Weather in Oslo?"}]
    return client.chat.completions.create(
        model=MODEL, messages=messages, tools=[WEATHER_TOOL]
    ).model_dump()


def _embeddings_dump(client: OpenAI) -> dict[str, Any]:
    return client.embeddings.create(model=EMBEDDING_MODEL, input=["a", "b c"]).model_dump()


class TestTransparency:
    @pytest.mark.parametrize("call", [_chat_dump, _tool_dump, _embeddings_dump])
    def test_return_values_identical_to_uninstrumented(
        self,
        instrument_with: Callable[..., TracerProvider],
        client: OpenAI,
        call: Callable[[OpenAI], dict[str, Any]],
    ) -> None:
        bare = call(client)
        instrument_with()
        traced = call(client)

        assert traced == bare

    def test_return_type_unchanged(self, spans: InMemorySpanExporter, client: OpenAI) -> None:
        response = client.chat.completions.create(model=MODEL, messages=QUESTION)
        assert type(response) is openai.types.chat.ChatCompletion

    def test_failing_pricing_changes_nothing_for_the_user(
        self,
        instrument_with: Callable[..., TracerProvider],
        client: OpenAI,
        monkeypatch: pytest.MonkeyPatch,
        only_span: Any,
    ) -> None:
        bare = _chat_dump(client)

        def broken(*args: Any, **kwargs: Any) -> float:
            raise RuntimeError("price table exploded")

        monkeypatch.setattr(pricing, "cost_usd", broken)
        instrument_with()
        traced = _chat_dump(client)

        assert traced == bare
        attrs = only_span().attributes
        assert semconv.COST_USD not in attrs
        assert attrs[semconv.USAGE_INPUT_TOKENS] == bare["usage"]["prompt_tokens"]

    @pytest.mark.parametrize(
        ("broken_function", "spans_left"),
        [
            ("describe", 0),  # no span, the call runs bare
            ("response_attributes", 2),  # spans end without response attributes
            ("input_messages", 2),  # spans lose their content, keep tokens
            ("output_messages", 2),
            ("to_json", 2),
        ],
    )
    def test_failing_span_builder_changes_nothing_for_the_user(
        self,
        instrument_with: Callable[..., TracerProvider],
        span_exporter: InMemorySpanExporter,
        client: OpenAI,
        monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture,
        broken_function: str,
        spans_left: int,
    ) -> None:
        bare = _chat_dump(client)

        def broken(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("assay bug")

        # The base's hooks, the shared chat-format readers, the JSON encoder where it is used.
        owners = {
            "describe": [openai_provider.OpenAIWrappers],
            "response_attributes": [openai_provider.OpenAIWrappers],
            "input_messages": [_chat_chunks],
            "output_messages": [_chat_chunks],
            "to_json": [_chat_chunks, _call],
        }[broken_function]
        for owner in owners:
            monkeypatch.setattr(owner, broken_function, broken)
        monkeypatch.setattr("assay.instrumentation._spans._reported_kinds", set())
        instrument_with()
        caplog.clear()  # what instrument() said (methods other tests took): not the calls'
        with caplog.at_level("WARNING", logger="assay.instrumentation"):
            first = _chat_dump(client)
            second = _chat_dump(client)

        assert first == bare
        assert second == bare
        warnings = [r for r in caplog.records if r.name == "assay.instrumentation"]
        assert len(warnings) <= 2  # once per kind of failure, not once per call
        assert len({r.getMessage() for r in warnings}) == len(warnings)
        finished = span_exporter.get_finished_spans()
        assert len(finished) == spans_left
        if broken_function in ("_input_messages", "_output_messages", "to_json"):
            assert all(s.attributes[semconv.USAGE_INPUT_TOKENS] > 0 for s in finished)

    def test_failing_span_start_changes_nothing_for_the_user(
        self,
        instrument_with: Callable[..., TracerProvider],
        span_exporter: InMemorySpanExporter,
        client: OpenAI,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        bare = _chat_dump(client)

        def broken(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("tracer bug")

        instrument_with()
        wrappers = openai_provider.OpenAIInstrumentor()._wrappers
        monkeypatch.setattr(wrappers.tracer, "start_span", broken)

        assert _chat_dump(client) == bare
        assert span_exporter.get_finished_spans() == ()


class TestInstrumentor:
    def test_uninstrument_restores_the_original_methods(
        self, tracer_provider: TracerProvider
    ) -> None:
        from openai.resources.chat.completions import AsyncCompletions, Completions
        from openai.resources.embeddings import AsyncEmbeddings, Embeddings

        methods = [
            (Completions, "create"),
            (AsyncCompletions, "create"),
            (Completions, "parse"),
            (AsyncCompletions, "parse"),
            (Embeddings, "create"),
            (AsyncEmbeddings, "create"),
        ]
        originals = [vars(cls)[name] for cls, name in methods]

        instrument(tracer_provider=tracer_provider)
        try:
            assert all(
                vars(cls)[name] is not o for (cls, name), o in zip(methods, originals, strict=True)
            )
        finally:
            uninstrument()

        assert [vars(cls)[name] for cls, name in methods] == originals

    def test_no_spans_after_uninstrument(
        self, tracer_provider: TracerProvider, span_exporter: InMemorySpanExporter, client: OpenAI
    ) -> None:
        instrument(tracer_provider=tracer_provider)
        raw = client.chat.completions.with_raw_response  # binds the wrapped method
        uninstrument()

        client.chat.completions.create(model=MODEL, messages=QUESTION)
        raw.create(model=MODEL, messages=QUESTION)

        assert span_exporter.get_finished_spans() == ()

    def test_instrument_is_idempotent(self, tracer_provider: TracerProvider) -> None:
        try:
            first = instrument(tracer_provider=tracer_provider)
            second = instrument(tracer_provider=TracerProvider())
            assert first is second is tracer_provider
        finally:
            uninstrument()

    def test_spans_of_several_calls_are_separate(
        self, spans: InMemorySpanExporter, client: OpenAI, fake: FakeOpenAI
    ) -> None:
        for question in ("one?", "two?", "three?"):
            client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": question}]
            )

        finished: list[ReadableSpan] = list(spans.get_finished_spans())
        assert len(finished) == len(fake.requests) == 3
        assert len({span.context.span_id for span in finished}) == 3
