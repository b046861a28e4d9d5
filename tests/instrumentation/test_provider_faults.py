"""The provider faults the recorded traffic found (#17), each through the real client library
against a local fake answering exactly as the provider documents it.

- Azure OpenAI content-filtered answers: a choice without `message` (finish reason
  `content_filter`), and in streams a last chunk without `delta`;
- Anthropic `with_raw_response`: model, id, tokens, finish reason, reply and cost;
- Bedrock `invoke_model` with Meta Llama (plain and streamed), the older Claude text
  completions and Cohere Command bodies: finish reason and reply;
- audio and image token classes where providers report them (OpenAI's audio models,
  Gemini's per-modality counts).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from anthropic import Anthropic
from google import genai
from google.genai import types
from openai import AzureOpenAI, OpenAI
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from assay.collector.demo.fake_openai import FakeOpenAI
from assay.instrumentation import pricing, semconv
from tests.fakes.fake_bedrock import FakeBedrock
from tests.fakes.fake_gemini import FakeGemini

QUESTION = [{"role": "user", "content": "Describe the scene."}]
# Azure's content filter verdict on one text, as its responses carry it.
_SAFE = {"filtered": False, "severity": "safe"}
FILTER_RESULTS = {
    "hate": _SAFE,
    "self_harm": _SAFE,
    "sexual": _SAFE,
    "violence": {"filtered": True, "severity": "high"},
}
PROMPT_FILTER = [
    {"prompt_index": 0, "content_filter_results": {**FILTER_RESULTS, "violence": _SAFE}}
]


def output_messages(span: Any) -> Any:
    return json.loads(span.attributes[semconv.OUTPUT_MESSAGES])


# --- Azure OpenAI content filter ---------------------------------------------------------------


def _filtered(body: dict[str, Any]) -> dict[str, Any]:
    """A chat completion as Azure answers it when the completion was filtered: the choice has
    no message, its finish reason is content_filter and it carries the filter's verdict."""
    if body.get("object") != "chat.completion":
        return body
    choices = [
        {
            "index": c["index"],
            "finish_reason": "content_filter",
            "content_filter_results": FILTER_RESULTS,
        }
        for c in body["choices"]
    ]
    return {**body, "choices": choices, "prompt_filter_results": PROMPT_FILTER}


class AzureFilteringStreams(FakeOpenAI):
    """Azure's streamed chat answer when the completion is filtered part way: a first chunk
    with the prompt's verdict and no choices, some content, then a last chunk whose choice has
    no delta, finish reason content_filter and the verdict."""

    def chat_chunks(self, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
        chunks = list(super().chat_chunks(request))
        head = {k: chunks[0][k] for k in ("id", "object", "created", "model")}
        yield {**head, "id": "", "model": "", "choices": [], "prompt_filter_results": PROMPT_FILTER}
        content = [c for c in chunks if c["choices"] and not c["choices"][0].get("finish_reason")]
        yield from content[:3]
        last = {
            "index": 0,
            "finish_reason": "content_filter",
            "content_filter_results": FILTER_RESULTS,
        }
        yield {**head, "choices": [last]}
        yield from (c for c in chunks if not c["choices"])  # usage, when asked for


def azure_client(fake: FakeOpenAI) -> AzureOpenAI:
    return AzureOpenAI(
        azure_endpoint=fake.address, api_key="k", api_version="2024-10-21", max_retries=0
    )


class TestAzureContentFilter:
    def test_a_filtered_answer_keeps_its_finish_reason_and_usage(
        self, spans: InMemorySpanExporter, only_span: Any
    ) -> None:
        with FakeOpenAI(mutate=_filtered) as fake, azure_client(fake) as client:
            response = client.chat.completions.create(model="gpt-4o", messages=QUESTION)

        assert response.choices[0].finish_reason == "content_filter"
        span = only_span()
        attrs = span.attributes
        assert span.status.is_ok
        assert attrs[semconv.PROVIDER_NAME] == semconv.PROVIDER_AZURE_OPENAI
        assert attrs[semconv.RESPONSE_FINISH_REASONS] == ("content_filter",)
        assert output_messages(span) == [
            {"role": "assistant", "parts": [], "finish_reason": "content_filter"}
        ]
        assert attrs[semconv.USAGE_INPUT_TOKENS] == response.usage.prompt_tokens
        assert attrs[semconv.USAGE_SOURCE] == semconv.USAGE_SOURCE_REPORTED

    def test_a_stream_filtered_part_way_keeps_the_text_before_and_the_reason(
        self, spans: InMemorySpanExporter, only_span: Any
    ) -> None:
        with AzureFilteringStreams() as fake, azure_client(fake) as client:
            chunks = list(
                client.chat.completions.create(model="gpt-4o", messages=QUESTION, stream=True)
            )

        # The application gets Azure's chunks, the prompt verdict first; no usage chunk.
        assert chunks[0].choices == [] and chunks[-1].choices[0].finish_reason == "content_filter"
        text = "".join(c.choices[0].delta.content or "" for c in chunks[1:-1] if c.choices[0].delta)
        span = only_span()
        attrs = span.attributes
        assert attrs[semconv.RESPONSE_FINISH_REASONS] == ("content_filter",)
        (message,) = output_messages(span)
        assert message["parts"] == [{"type": "text", "content": text}]
        assert message["finish_reason"] == "content_filter"
        assert attrs[semconv.RESPONSE_ID] == chunks[1].id
        assert attrs[semconv.USAGE_SOURCE] == semconv.USAGE_SOURCE_REPORTED


# --- Anthropic with_raw_response ---------------------------------------------------------------


class TestAnthropicRawResponse:
    def test_model_id_tokens_finish_reason_reply_and_cost(
        self, spans: InMemorySpanExporter, anthropic_client: Anthropic, only_span: Any
    ) -> None:
        raw = anthropic_client.messages.with_raw_response.create(
            model="claude-sonnet-4-5", max_tokens=300, messages=QUESTION
        )
        message = raw.parse()

        span = only_span()
        attrs = span.attributes
        assert attrs[semconv.RESPONSE_MODEL] == message.model
        assert attrs[semconv.RESPONSE_ID] == message.id
        assert attrs[semconv.RESPONSE_FINISH_REASONS] == (message.stop_reason,)
        assert attrs[semconv.USAGE_INPUT_TOKENS] == message.usage.input_tokens
        assert attrs[semconv.USAGE_OUTPUT_TOKENS] == message.usage.output_tokens
        assert attrs[semconv.USAGE_SOURCE] == semconv.USAGE_SOURCE_REPORTED
        expected = pricing.cost_usd(
            message.model,
            message.usage.input_tokens,
            message.usage.output_tokens,
            provider="anthropic",
        )
        assert expected and attrs[semconv.COST_USD] == pytest.approx(expected)
        assert output_messages(span)[0]["parts"] == [
            {"type": "text", "content": message.content[0].text}
        ]

    def test_with_streaming_response_is_marked_usage_not_reported(
        self, spans: InMemorySpanExporter, anthropic_client: Anthropic, only_span: Any
    ) -> None:
        with anthropic_client.messages.with_streaming_response.create(
            model="claude-sonnet-4-5", max_tokens=300, messages=QUESTION
        ) as response:
            body = json.loads(response.read())

        attrs = only_span().attributes
        assert body["usage"]["output_tokens"] > 0  # the application read it itself
        assert attrs[semconv.USAGE_REPORTED] is False
        assert attrs[semconv.USAGE_SOURCE] == semconv.USAGE_SOURCE_NONE


# --- Bedrock InvokeModel text bodies -----------------------------------------------------------


@pytest.fixture
def bedrock() -> Iterator[Any]:
    with FakeBedrock() as fake:
        yield boto3.client("bedrock-runtime", **fake.client_options())


def invoke(bedrock: Any, model_id: str, body: dict[str, Any]) -> dict[str, Any]:
    answer = bedrock.invoke_model(modelId=model_id, body=json.dumps(body))
    return {"body": json.loads(answer["body"].read()), "headers": answer["ResponseMetadata"]}


class TestBedrockTextBodies:
    def test_meta_llama(self, spans: InMemorySpanExporter, bedrock: Any, only_span: Any) -> None:
        llama = "meta.llama3-2-1b-instruct-v1:0"
        body = invoke(bedrock, llama, {"prompt": "Why is the sky blue?", "max_gen_len": 128})[
            "body"
        ]

        span = only_span()
        attrs = span.attributes
        assert attrs[semconv.OPERATION_NAME] == semconv.OP_TEXT_COMPLETION
        assert attrs[semconv.REQUEST_MAX_TOKENS] == 128
        assert attrs[semconv.RESPONSE_FINISH_REASONS] == ("stop",)
        assert output_messages(span) == [
            {
                "role": "assistant",
                "parts": [{"type": "text", "content": body["generation"]}],
                "finish_reason": "stop",
            }
        ]
        assert attrs[semconv.USAGE_INPUT_TOKENS] == body["prompt_token_count"]
        assert attrs[semconv.USAGE_OUTPUT_TOKENS] == body["generation_token_count"]
        assert attrs[semconv.COST_USD] > 0

    def test_meta_llama_stream(
        self, spans: InMemorySpanExporter, bedrock: Any, only_span: Any
    ) -> None:
        llama = "meta.llama3-70b-instruct-v1:0"
        response = bedrock.invoke_model_with_response_stream(
            modelId=llama, body=json.dumps({"prompt": "Why is the sky blue?"})
        )
        chunks = [json.loads(event["chunk"]["bytes"]) for event in response["body"]]

        span = only_span()
        attrs = span.attributes
        text = "".join(chunk["generation"] for chunk in chunks)
        assert attrs[semconv.RESPONSE_FINISH_REASONS] == ("stop",)
        assert output_messages(span)[0]["parts"] == [{"type": "text", "content": text}]
        metrics = chunks[-1]["amazon-bedrock-invocationMetrics"]
        assert attrs[semconv.USAGE_INPUT_TOKENS] == metrics["inputTokenCount"]
        assert attrs[semconv.USAGE_OUTPUT_TOKENS] == metrics["outputTokenCount"]
        assert attrs[semconv.COST_USD] > 0

    def test_claude_text_completions(
        self, spans: InMemorySpanExporter, bedrock: Any, only_span: Any
    ) -> None:
        prompt = "\n\nHuman: Why is the sky blue?\n\nAssistant:"
        answer = invoke(
            bedrock, "anthropic.claude-v2:1", {"prompt": prompt, "max_tokens_to_sample": 200}
        )

        span = only_span()
        attrs = span.attributes
        assert attrs[semconv.RESPONSE_FINISH_REASONS] == ("stop_sequence",)
        assert output_messages(span)[0]["parts"] == [
            {"type": "text", "content": answer["body"]["completion"]}
        ]
        headers = answer["headers"]["HTTPHeaders"]
        assert attrs[semconv.USAGE_INPUT_TOKENS] == int(headers["x-amzn-bedrock-input-token-count"])
        assert attrs[semconv.USAGE_OUTPUT_TOKENS] == int(
            headers["x-amzn-bedrock-output-token-count"]
        )
        assert attrs[semconv.REQUEST_MAX_TOKENS] == 200
        assert attrs[semconv.COST_USD] > 0  # Claude 2.1 on Bedrock has its price

    def test_cohere_command(
        self, spans: InMemorySpanExporter, bedrock: Any, only_span: Any
    ) -> None:
        answer = invoke(
            bedrock,
            "cohere.command-text-v14",
            {"prompt": "Why is the sky blue?", "max_tokens": 100},
        )

        span = only_span()
        attrs = span.attributes
        (generation,) = answer["body"]["generations"]
        assert attrs[semconv.RESPONSE_ID] == answer["body"]["id"]
        assert attrs[semconv.RESPONSE_FINISH_REASONS] == ("COMPLETE",)
        assert output_messages(span)[0]["parts"] == [
            {"type": "text", "content": generation["text"]}
        ]
        assert attrs[semconv.USAGE_OUTPUT_TOKENS] > 0


# --- audio and image tokens --------------------------------------------------------------------

AUDIO_IN, AUDIO_OUT = 40, 60


def _with_audio(body: dict[str, Any]) -> dict[str, Any]:
    """Usage as OpenAI's audio models report it: the audio part of each total in its details."""
    usage = body.get("usage")
    if not isinstance(usage, dict):
        return body
    usage = {
        **usage,
        "prompt_tokens": usage["prompt_tokens"] + AUDIO_IN,
        "completion_tokens": usage["completion_tokens"] + AUDIO_OUT,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": AUDIO_IN},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": AUDIO_OUT},
    }
    return {**body, "usage": usage}


class GeminiWithModalities(FakeGemini):
    """Gemini's usage for a prompt with audio and an image: per-modality counts of the prompt."""

    def _usage(
        self, model: str, body: dict[str, Any], parts: list[dict[str, Any]] | None
    ) -> dict[str, Any]:
        usage = super()._usage(model, body, parts)
        text = usage["promptTokenCount"]
        usage["promptTokenCount"] += AUDIO_IN + 258
        usage["promptTokensDetails"] = [
            {"modality": "TEXT", "tokenCount": text},
            {"modality": "AUDIO", "tokenCount": AUDIO_IN},
            {"modality": "IMAGE", "tokenCount": 258},
        ]
        return usage


class TestAudioAndImageTokens:
    def test_openai_audio_tokens_are_their_own_class(
        self, spans: InMemorySpanExporter, only_span: Any
    ) -> None:
        model = "gpt-4o-audio-preview"
        with (
            FakeOpenAI(mutate=_with_audio) as fake,
            OpenAI(base_url=fake.base_url, api_key="k", max_retries=0) as client,
        ):
            response = client.chat.completions.create(model=model, messages=QUESTION)

        attrs = only_span().attributes
        usage = response.usage
        assert attrs[semconv.USAGE_AUDIO_INPUT_TOKENS] == AUDIO_IN
        assert attrs[semconv.USAGE_AUDIO_OUTPUT_TOKENS] == AUDIO_OUT
        expected = pricing.cost_usd(
            model,
            usage.prompt_tokens,
            usage.completion_tokens,
            0,
            provider="openai",
            reasoning_tokens=0,
            audio_input_tokens=AUDIO_IN,
            audio_output_tokens=AUDIO_OUT,
        )
        text_only = pricing.cost_usd(model, usage.prompt_tokens, usage.completion_tokens)
        assert expected and text_only and expected > text_only  # audio costs more than text
        assert attrs[semconv.COST_USD] == pytest.approx(expected)

    def test_gemini_per_modality_counts(self, spans: InMemorySpanExporter, only_span: Any) -> None:
        with GeminiWithModalities() as fake:
            client = genai.Client(
                api_key="k", http_options=types.HttpOptions(base_url=fake.base_url)
            )
            response = client.models.generate_content(
                model="gemini-2.0-flash", contents="Describe the recording and the picture."
            )

        attrs = only_span().attributes
        assert attrs[semconv.USAGE_INPUT_TOKENS] == response.usage_metadata.prompt_token_count
        assert attrs[semconv.USAGE_AUDIO_INPUT_TOKENS] == AUDIO_IN
        assert attrs[semconv.USAGE_IMAGE_INPUT_TOKENS] == 258
        assert semconv.USAGE_AUDIO_OUTPUT_TOKENS not in attrs
