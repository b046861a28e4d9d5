"""Bedrock instrumentation: real boto3 against a fake Bedrock runtime speaking its wire format."""

from __future__ import annotations

import gc
import json
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import botocore.client
import pytest
import wrapt
from botocore.exceptions import ClientError, EventStreamError
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from assay.instrumentation import pricing, semconv, uninstrument
from assay.instrumentation.providers import _bedrock_bodies, _converse
from assay.instrumentation.providers import bedrock as bedrock_provider
from tests.fakes.fake_bedrock import (
    FAIL_MALFORMED,
    FAIL_MIDSTREAM,
    FAIL_THROTTLE,
    FAIL_VALIDATION,
    MALFORMED_BODY,
    FakeBedrock,
)

NOVA = "amazon.nova-lite-v1:0"
CLAUDE = "anthropic.claude-3-5-sonnet-20241022-v2:0"
TITAN = "amazon.titan-text-express-v1"
TITAN_EMBED = "amazon.titan-embed-text-v2:0"
QUESTION = [{"role": "user", "content": [{"text": "Why is the sky blue?"}]}]
SYSTEM = [{"text": "You answer in one paragraph."}]
WEATHER = {
    "tools": [
        {
            "toolSpec": {
                "name": "get_weather",
                "description": "Current weather for a city",
                "inputSchema": {
                    "json": {
                        "type": "object",
                        "properties": {"city": {"type": "string"}},
                        "required": ["city"],
                    }
                },
            }
        }
    ]
}
ANY_CONTENT = (
    semconv.INPUT_MESSAGES,
    semconv.OUTPUT_MESSAGES,
    semconv.SYSTEM_INSTRUCTIONS,
    semconv.TOOL_DEFINITIONS,
)


@pytest.fixture
def fake_bedrock() -> Iterator[FakeBedrock]:
    with FakeBedrock() as server:
        yield server


@pytest.fixture
def bedrock(fake_bedrock: FakeBedrock) -> Any:
    return boto3.client("bedrock-runtime", **fake_bedrock.client_options())


def anthropic_body(**extra: Any) -> bytes:
    body = {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 300,
        "messages": [{"role": "user", "content": "Why is the sky blue?"}],
        **extra,
    }
    return json.dumps(body).encode()


def uninstrumented(call: Callable[[], Any]) -> Any:
    """The same call with Assay switched off: what the user gets without us."""
    uninstrument()
    return call()


def usage_cost(model: str, usage: dict[str, int]) -> float | None:
    cache_read = usage.get("cacheReadInputTokens", 0)
    cache_write = usage.get("cacheWriteInputTokens", 0)
    return pricing.cost_usd(
        model,
        usage["inputTokens"] + cache_read + cache_write,
        usage["outputTokens"],
        cached_input_tokens=cache_read,
        cache_creation_input_tokens=cache_write,
        provider=semconv.PROVIDER_AWS_BEDROCK,
    )


class TestConverse:
    def test_one_client_span_per_the_genai_conventions(
        self, spans: InMemorySpanExporter, bedrock: Any, only_span: Any
    ) -> None:
        response = bedrock.converse(
            modelId=NOVA,
            system=SYSTEM,
            messages=QUESTION,
            inferenceConfig={
                "maxTokens": 200,
                "temperature": 0.2,
                "topP": 0.9,
                "stopSequences": ["\n\n"],
            },
        )

        span = only_span()
        attrs = span.attributes
        assert span.name == f"chat {NOVA}"
        assert span.kind is SpanKind.CLIENT
        assert span.status.status_code is StatusCode.UNSET
        assert attrs[semconv.OPERATION_NAME] == semconv.OP_CHAT
        assert attrs[semconv.PROVIDER_NAME] == semconv.PROVIDER_AWS_BEDROCK
        assert attrs[semconv.REQUEST_MODEL] == NOVA
        assert attrs[semconv.REQUEST_STREAM] is False
        assert attrs[semconv.REQUEST_MAX_TOKENS] == 200
        assert attrs[semconv.REQUEST_TEMPERATURE] == 0.2
        assert attrs[semconv.REQUEST_TOP_P] == 0.9
        assert attrs[semconv.REQUEST_STOP_SEQUENCES] == ("\n\n",)
        assert json.loads(attrs[semconv.INPUT_MESSAGES]) == [
            {"role": "user", "parts": [{"type": "text", "content": "Why is the sky blue?"}]}
        ]
        assert json.loads(attrs[semconv.SYSTEM_INSTRUCTIONS]) == [
            {"type": "text", "content": "You answer in one paragraph."}
        ]
        text = response["output"]["message"]["content"][0]["text"]
        assert json.loads(attrs[semconv.OUTPUT_MESSAGES]) == [
            {
                "role": "assistant",
                "parts": [{"type": "text", "content": text}],
                "finish_reason": "end_turn",
            }
        ]
        assert attrs[semconv.RESPONSE_FINISH_REASONS] == ("end_turn",)
        usage = response["usage"]
        assert attrs[semconv.USAGE_INPUT_TOKENS] == usage["inputTokens"]
        assert attrs[semconv.USAGE_OUTPUT_TOKENS] == usage["outputTokens"]
        cost = usage_cost(NOVA, usage)
        assert cost is not None and cost > 0
        assert attrs[semconv.COST_USD] == pytest.approx(cost)

    def test_cache_reads_count_as_input_and_are_priced_as_cached(
        self, spans: InMemorySpanExporter, bedrock: Any, only_span: Any
    ) -> None:
        response = bedrock.converse(
            modelId=NOVA,
            system=[*SYSTEM, {"cachePoint": {"type": "default"}}],
            messages=QUESTION,
        )

        attrs = only_span().attributes
        usage = response["usage"]
        assert usage["cacheReadInputTokens"] > 0
        # Bedrock reports cache reads apart from inputTokens; GenAI input tokens include them.
        assert (
            attrs[semconv.USAGE_INPUT_TOKENS]
            == usage["inputTokens"] + usage["cacheReadInputTokens"]
        )
        assert attrs[semconv.USAGE_CACHE_READ_INPUT_TOKENS] == usage["cacheReadInputTokens"]
        price = pricing.lookup(NOVA, semconv.PROVIDER_AWS_BEDROCK)
        assert price is not None and price.cached_input is not None
        expected = (
            usage["inputTokens"] * price.input
            + usage["cacheReadInputTokens"] * price.cached_input
            + usage["outputTokens"] * price.output
        ) / 1e6
        assert attrs[semconv.COST_USD] == pytest.approx(expected)
        # the cache point is not a message part
        assert json.loads(attrs[semconv.SYSTEM_INSTRUCTIONS]) == [
            {"type": "text", "content": "You answer in one paragraph."}
        ]

    def test_tool_definitions_calls_and_results(
        self, spans: InMemorySpanExporter, bedrock: Any
    ) -> None:
        first = bedrock.converse(modelId=NOVA, messages=QUESTION, toolConfig=WEATHER)
        tool_use = first["output"]["message"]["content"][0]["toolUse"]
        bedrock.converse(
            modelId=NOVA,
            messages=[
                *QUESTION,
                first["output"]["message"],
                {
                    "role": "user",
                    "content": [
                        {
                            "toolResult": {
                                "toolUseId": tool_use["toolUseId"],
                                "content": [{"json": {"sky": "blue", "reason": "Rayleigh"}}],
                            }
                        }
                    ],
                },
            ],
            toolConfig=WEATHER,
        )

        asked, answered = spans.get_finished_spans()
        assert json.loads(asked.attributes[semconv.TOOL_DEFINITIONS]) == [
            {
                "type": "function",
                "name": "get_weather",
                "description": "Current weather for a city",
                "parameters": WEATHER["tools"][0]["toolSpec"]["inputSchema"]["json"],
            }
        ]
        assert asked.attributes[semconv.RESPONSE_FINISH_REASONS] == ("tool_use",)
        call_part = {
            "type": "tool_call",
            "id": tool_use["toolUseId"],
            "name": "get_weather",
            "arguments": tool_use["input"],
        }
        assert json.loads(asked.attributes[semconv.OUTPUT_MESSAGES])[0]["parts"] == [call_part]
        history = json.loads(answered.attributes[semconv.INPUT_MESSAGES])
        assert history[1] == {"role": "assistant", "parts": [call_part]}
        assert history[2]["parts"] == [
            {
                "type": "tool_call_response",
                "id": tool_use["toolUseId"],
                "response": {"sky": "blue", "reason": "Rayleigh"},
            }
        ]
        assert answered.attributes[semconv.RESPONSE_FINISH_REASONS] == ("end_turn",)

    def test_aws_error_becomes_an_error_span_and_is_raised_unchanged(
        self, spans: InMemorySpanExporter, bedrock: Any, only_span: Any
    ) -> None:
        with pytest.raises(ClientError) as raised:
            bedrock.converse(modelId=FAIL_THROTTLE, messages=QUESTION)

        assert raised.value.response["Error"]["Code"] == "ThrottlingException"
        span = only_span()
        assert span.status.status_code is StatusCode.ERROR
        assert span.attributes[semconv.ERROR_TYPE] == "ThrottlingException"
        assert semconv.USAGE_INPUT_TOKENS not in span.attributes
        assert [event.name for event in span.events] == ["exception"]

    def test_validation_error_code(
        self, spans: InMemorySpanExporter, bedrock: Any, only_span: Any
    ) -> None:
        with pytest.raises(bedrock.exceptions.ValidationException):
            bedrock.converse(modelId=FAIL_VALIDATION, messages=QUESTION)
        assert only_span().attributes[semconv.ERROR_TYPE] == "ValidationException"

    def test_unknown_model_has_tokens_and_no_cost(
        self, spans: InMemorySpanExporter, bedrock: Any, only_span: Any
    ) -> None:
        bedrock.converse(modelId="acme.unheard-of-model-v1:0", messages=QUESTION)
        attrs = only_span().attributes
        assert attrs[semconv.USAGE_INPUT_TOKENS] > 0
        assert semconv.COST_USD not in attrs  # unknown price is NULL, never 0

    def test_content_capture_off_keeps_prompts_off_the_span(
        self, instrument_with: Any, span_exporter: InMemorySpanExporter, bedrock: Any
    ) -> None:
        instrument_with(capture_content=False)
        bedrock.converse(modelId=NOVA, system=SYSTEM, messages=QUESTION, toolConfig=WEATHER)
        stream = bedrock.converse_stream(modelId=NOVA, messages=QUESTION)["stream"]
        list(stream)

        for span in span_exporter.get_finished_spans():
            assert not set(ANY_CONTENT) & set(span.attributes), span.name
            assert span.attributes[semconv.USAGE_OUTPUT_TOKENS] > 0


class TestConverseStream:
    def test_events_pass_through_unchanged_and_the_span_has_usage(
        self, spans: InMemorySpanExporter, bedrock: Any, only_span: Any
    ) -> None:
        response = bedrock.converse_stream(modelId=NOVA, system=SYSTEM, messages=QUESTION)
        events = list(response["stream"])

        assert events == uninstrumented(
            lambda: list(
                bedrock.converse_stream(modelId=NOVA, system=SYSTEM, messages=QUESTION)["stream"]
            )
        )
        span = only_span()
        attrs = span.attributes
        assert attrs[semconv.REQUEST_STREAM] is True
        usage = events[-1]["metadata"]["usage"]
        assert attrs[semconv.USAGE_INPUT_TOKENS] == usage["inputTokens"]
        assert attrs[semconv.USAGE_OUTPUT_TOKENS] == usage["outputTokens"]
        assert attrs[semconv.COST_USD] == pytest.approx(usage_cost(NOVA, usage))
        text = "".join(
            e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e
        )
        output = json.loads(attrs[semconv.OUTPUT_MESSAGES])
        assert output == [
            {
                "role": "assistant",
                "parts": [{"type": "text", "content": text}],
                "finish_reason": "end_turn",
            }
        ]
        assert attrs[semconv.RESPONSE_TIME_TO_FIRST_CHUNK] > 0
        assert semconv.STREAM_CLOSED_EARLY not in attrs

    def test_streamed_tool_call_arguments_are_joined(
        self, spans: InMemorySpanExporter, bedrock: Any, only_span: Any
    ) -> None:
        events = list(
            bedrock.converse_stream(modelId=NOVA, messages=QUESTION, toolConfig=WEATHER)["stream"]
        )

        fragments = [
            e["contentBlockDelta"]["delta"]["toolUse"]["input"]
            for e in events
            if "contentBlockDelta" in e
        ]
        assert len(fragments) > 1  # the fake splits the arguments, as Bedrock does
        start = events[1]["contentBlockStart"]["start"]["toolUse"]
        attrs = only_span().attributes
        assert json.loads(attrs[semconv.OUTPUT_MESSAGES])[0]["parts"] == [
            {
                "type": "tool_call",
                "id": start["toolUseId"],
                "name": "get_weather",
                "arguments": json.loads("".join(fragments)),
            }
        ]
        assert attrs[semconv.RESPONSE_FINISH_REASONS] == ("tool_use",)

    def test_consumer_closing_early_ends_the_span_once(
        self, spans: InMemorySpanExporter, bedrock: Any, only_span: Any
    ) -> None:
        stream = bedrock.converse_stream(modelId=NOVA, messages=QUESTION)["stream"]
        first = next(iter(stream))
        assert first == {"messageStart": {"role": "assistant"}}
        assert spans.get_finished_spans() == ()
        stream.close()
        stream.close()

        attrs = only_span().attributes
        assert attrs[semconv.STREAM_CLOSED_EARLY] is True
        assert attrs[semconv.USAGE_REPORTED] is False
        assert semconv.USAGE_INPUT_TOKENS not in attrs  # unknown, not 0

    def test_error_event_mid_stream_is_raised_and_recorded(
        self, spans: InMemorySpanExporter, bedrock: Any, only_span: Any
    ) -> None:
        received = []
        with pytest.raises(EventStreamError) as raised:
            for event in bedrock.converse_stream(modelId=FAIL_MIDSTREAM, messages=QUESTION)[
                "stream"
            ]:
                received.append(event)

        assert raised.value.response["Error"]["Code"] == "modelStreamErrorException"
        assert len(received) == 3
        span = only_span()
        assert span.status.status_code is StatusCode.ERROR
        assert span.attributes[semconv.ERROR_TYPE] == "modelStreamErrorException"
        partial = json.loads(span.attributes[semconv.OUTPUT_MESSAGES])[0]["parts"][0]["content"]
        assert partial == "".join(e["contentBlockDelta"]["delta"]["text"] for e in received[1:])

    def test_the_stream_is_still_botocores_event_stream(
        self, spans: InMemorySpanExporter, bedrock: Any
    ) -> None:
        from botocore.eventstream import EventStream

        stream = bedrock.converse_stream(modelId=NOVA, messages=QUESTION)["stream"]
        assert isinstance(stream, EventStream)
        assert len(list(stream)) > 3


class TestInvokeModel:
    def test_anthropic_body_is_read_and_left_readable(
        self, spans: InMemorySpanExporter, bedrock: Any, only_span: Any
    ) -> None:
        body = anthropic_body(system="Be brief.", temperature=0.5)
        response = bedrock.invoke_model(modelId=CLAUDE, body=body)
        data = response["body"].read()

        assert data == uninstrumented(
            lambda: bedrock.invoke_model(modelId=CLAUDE, body=body)["body"].read()
        )
        answer = json.loads(data)
        attrs = only_span().attributes
        assert attrs[semconv.OPERATION_NAME] == semconv.OP_CHAT
        assert attrs[semconv.REQUEST_MAX_TOKENS] == 300
        assert attrs[semconv.REQUEST_TEMPERATURE] == 0.5
        assert attrs[semconv.RESPONSE_ID] == answer["id"]
        assert attrs[semconv.RESPONSE_MODEL] == answer["model"]
        assert attrs[semconv.RESPONSE_FINISH_REASONS] == ("end_turn",)
        assert json.loads(attrs[semconv.SYSTEM_INSTRUCTIONS]) == [
            {"type": "text", "content": "Be brief."}
        ]
        assert json.loads(attrs[semconv.OUTPUT_MESSAGES])[0]["parts"] == [
            {"type": "text", "content": answer["content"][0]["text"]}
        ]
        usage = answer["usage"]
        assert attrs[semconv.USAGE_INPUT_TOKENS] == usage["input_tokens"]
        assert attrs[semconv.USAGE_OUTPUT_TOKENS] == usage["output_tokens"]
        expected = pricing.cost_usd(
            CLAUDE,
            usage["input_tokens"],
            usage["output_tokens"],
            provider=semconv.PROVIDER_AWS_BEDROCK,
        )
        assert expected is not None and attrs[semconv.COST_USD] == pytest.approx(expected)

    def test_anthropic_tool_use(
        self, spans: InMemorySpanExporter, bedrock: Any, only_span: Any
    ) -> None:
        tool = {
            "name": "get_weather",
            "description": "Current weather",
            "input_schema": WEATHER["tools"][0]["toolSpec"]["inputSchema"]["json"],
        }
        answer = json.loads(
            bedrock.invoke_model(modelId=CLAUDE, body=anthropic_body(tools=[tool]))["body"].read()
        )

        attrs = only_span().attributes
        block = answer["content"][0]
        assert json.loads(attrs[semconv.TOOL_DEFINITIONS]) == [
            {
                "type": "function",
                "name": "get_weather",
                "description": "Current weather",
                "parameters": tool["input_schema"],
            }
        ]
        assert json.loads(attrs[semconv.OUTPUT_MESSAGES])[0]["parts"] == [
            {
                "type": "tool_call",
                "id": block["id"],
                "name": "get_weather",
                "arguments": block["input"],
            }
        ]
        assert attrs[semconv.RESPONSE_FINISH_REASONS] == ("tool_use",)

    def test_nova_body(self, spans: InMemorySpanExporter, bedrock: Any, only_span: Any) -> None:
        body = {
            "schemaVersion": "messages-v1",
            "messages": QUESTION,
            "inferenceConfig": {"max_new_tokens": 64},
        }
        answer = json.loads(
            bedrock.invoke_model(modelId=NOVA, body=json.dumps(body))["body"].read()
        )

        attrs = only_span().attributes
        assert attrs[semconv.REQUEST_MAX_TOKENS] == 64
        assert attrs[semconv.USAGE_INPUT_TOKENS] == answer["usage"]["inputTokens"]
        assert attrs[semconv.USAGE_OUTPUT_TOKENS] == answer["usage"]["outputTokens"]
        assert attrs[semconv.COST_USD] == pytest.approx(usage_cost(NOVA, answer["usage"]))
        assert (
            json.loads(attrs[semconv.OUTPUT_MESSAGES])[0]["parts"][0]["content"]
            == (answer["output"]["message"]["content"][0]["text"])
        )

    def test_titan_text_body(
        self, spans: InMemorySpanExporter, bedrock: Any, only_span: Any
    ) -> None:
        body = {
            "inputText": "Why is the sky blue?",
            "textGenerationConfig": {"maxTokenCount": 50, "temperature": 0.1},
        }
        answer = json.loads(
            bedrock.invoke_model(modelId=TITAN, body=json.dumps(body))["body"].read()
        )

        span = only_span()
        attrs = span.attributes
        assert span.name == f"text_completion {TITAN}"
        assert attrs[semconv.OPERATION_NAME] == semconv.OP_TEXT_COMPLETION
        assert attrs[semconv.REQUEST_MAX_TOKENS] == 50
        assert attrs[semconv.USAGE_INPUT_TOKENS] == answer["inputTextTokenCount"]
        assert attrs[semconv.USAGE_OUTPUT_TOKENS] == answer["results"][0]["tokenCount"]
        assert attrs[semconv.RESPONSE_FINISH_REASONS] == ("FINISH",)
        assert (
            json.loads(attrs[semconv.INPUT_MESSAGES])[0]["parts"][0]["content"] == body["inputText"]
        )
        assert semconv.COST_USD in attrs

    def test_titan_embeddings(
        self, spans: InMemorySpanExporter, bedrock: Any, only_span: Any
    ) -> None:
        body = {"inputText": "the sky is blue", "dimensions": 16}
        answer = json.loads(
            bedrock.invoke_model(modelId=TITAN_EMBED, body=json.dumps(body))["body"].read()
        )

        attrs = only_span().attributes
        assert attrs[semconv.OPERATION_NAME] == semconv.OP_EMBEDDINGS
        assert attrs[semconv.EMBEDDINGS_DIMENSION_COUNT] == 16
        assert attrs[semconv.USAGE_INPUT_TOKENS] == answer["inputTextTokenCount"]
        assert semconv.USAGE_OUTPUT_TOKENS not in attrs
        assert attrs[semconv.COST_USD] == pytest.approx(answer["inputTextTokenCount"] * 0.02 / 1e6)

    def test_other_body_formats_get_tokens_and_cost_from_the_service_headers(
        self, spans: InMemorySpanExporter, bedrock: Any, only_span: Any
    ) -> None:
        llama = "meta.llama3-1-70b-instruct-v1:0"
        body = json.dumps({"prompt": "Why is the sky blue?", "max_gen_len": 128})
        answer = json.loads(bedrock.invoke_model(modelId=llama, body=body)["body"].read())

        attrs = only_span().attributes
        assert attrs[semconv.USAGE_INPUT_TOKENS] == answer["prompt_token_count"]
        assert attrs[semconv.USAGE_OUTPUT_TOKENS] == answer["generation_token_count"]
        expected = pricing.cost_usd(
            llama,
            answer["prompt_token_count"],
            answer["generation_token_count"],
            provider=semconv.PROVIDER_AWS_BEDROCK,
        )
        assert expected is not None and attrs[semconv.COST_USD] == pytest.approx(expected)

    def test_a_file_body_is_never_read_by_assay(
        self, spans: InMemorySpanExporter, bedrock: Any, only_span: Any, tmp_path: Any
    ) -> None:
        path = tmp_path / "body.json"
        path.write_bytes(anthropic_body())
        with path.open("rb") as handle:
            answer = json.loads(bedrock.invoke_model(modelId=CLAUDE, body=handle)["body"].read())
        attrs = only_span().attributes
        assert semconv.INPUT_MESSAGES not in attrs  # the file was not read twice
        # tokens still come from the response
        assert attrs[semconv.USAGE_OUTPUT_TOKENS] == answer["usage"]["output_tokens"]


class TestInvokeModelStream:
    def test_anthropic_chunks_pass_through_and_usage_is_read(
        self, spans: InMemorySpanExporter, bedrock: Any, only_span: Any
    ) -> None:
        events = list(
            bedrock.invoke_model_with_response_stream(modelId=CLAUDE, body=anthropic_body())["body"]
        )

        assert events == uninstrumented(
            lambda: list(
                bedrock.invoke_model_with_response_stream(modelId=CLAUDE, body=anthropic_body())[
                    "body"
                ]
            )
        )
        chunks = [json.loads(e["chunk"]["bytes"]) for e in events]
        metrics = chunks[-1]["amazon-bedrock-invocationMetrics"]
        attrs = only_span().attributes
        assert attrs[semconv.REQUEST_STREAM] is True
        assert attrs[semconv.USAGE_INPUT_TOKENS] == metrics["inputTokenCount"]
        assert attrs[semconv.USAGE_OUTPUT_TOKENS] == metrics["outputTokenCount"]
        assert attrs[semconv.RESPONSE_FINISH_REASONS] == ("end_turn",)
        text = "".join(c["delta"]["text"] for c in chunks if c["type"] == "content_block_delta")
        assert json.loads(attrs[semconv.OUTPUT_MESSAGES])[0]["parts"] == [
            {"type": "text", "content": text}
        ]
        assert semconv.COST_USD in attrs

    def test_titan_chunks(self, spans: InMemorySpanExporter, bedrock: Any, only_span: Any) -> None:
        body = json.dumps({"inputText": "Why is the sky blue?"})
        chunks = [
            json.loads(e["chunk"]["bytes"])
            for e in bedrock.invoke_model_with_response_stream(modelId=TITAN, body=body)["body"]
        ]
        attrs = only_span().attributes
        assert attrs[semconv.USAGE_OUTPUT_TOKENS] == chunks[-1]["totalOutputTextTokenCount"]
        assert json.loads(attrs[semconv.OUTPUT_MESSAGES])[0]["parts"][0]["content"] == "".join(
            c["outputText"] for c in chunks
        )

    def test_nova_chunks(self, spans: InMemorySpanExporter, bedrock: Any, only_span: Any) -> None:
        body = json.dumps({"schemaVersion": "messages-v1", "messages": QUESTION})
        chunks = [
            json.loads(e["chunk"]["bytes"])
            for e in bedrock.invoke_model_with_response_stream(modelId=NOVA, body=body)["body"]
        ]
        usage = next(c["metadata"]["usage"] for c in chunks if "metadata" in c)
        attrs = only_span().attributes
        assert attrs[semconv.USAGE_INPUT_TOKENS] == usage["inputTokens"]
        assert attrs[semconv.USAGE_OUTPUT_TOKENS] == usage["outputTokens"]
        assert attrs[semconv.RESPONSE_FINISH_REASONS] == ("end_turn",)
        text = "".join(
            c["contentBlockDelta"]["delta"]["text"] for c in chunks if "contentBlockDelta" in c
        )
        assert json.loads(attrs[semconv.OUTPUT_MESSAGES])[0]["parts"] == [
            {"type": "text", "content": text}
        ]

    def test_error_mid_stream(
        self, spans: InMemorySpanExporter, bedrock: Any, only_span: Any
    ) -> None:
        with pytest.raises(EventStreamError):
            list(
                bedrock.invoke_model_with_response_stream(
                    modelId=FAIL_MIDSTREAM, body=anthropic_body()
                )["body"]
            )
        span = only_span()
        assert span.status.status_code is StatusCode.ERROR
        assert span.attributes[semconv.ERROR_TYPE] == "modelStreamErrorException"


class TestScope:
    def test_other_aws_services_are_untouched(
        self, spans: InMemorySpanExporter, fake_bedrock: FakeBedrock
    ) -> None:
        s3 = boto3.client("s3", **fake_bedrock.client_options())
        with pytest.raises(ClientError):
            s3.list_buckets()
        assert spans.get_finished_spans() == ()

    def test_uninstrument_restores_botocore(
        self, spans: InMemorySpanExporter, bedrock: Any
    ) -> None:
        def patched() -> bool:
            return isinstance(
                vars(botocore.client.BaseClient)["_make_api_call"], wrapt.FunctionWrapper
            )

        assert patched()
        uninstrument()
        assert not patched()
        bedrock.converse(modelId=NOVA, messages=QUESTION)
        assert spans.get_finished_spans() == ()


class TestNeverBreak:
    """Assay failing inside must leave the user's call, its value and its errors, as they were."""

    def test_failing_message_conversion_loses_content_not_the_call(
        self,
        spans: InMemorySpanExporter,
        bedrock: Any,
        only_span: Any,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        def broken(*args: Any) -> Any:
            raise RuntimeError("assay bug")

        monkeypatch.setattr(_converse, "parts", broken)
        response = bedrock.converse(modelId=NOVA, messages=QUESTION)
        assert response["output"]["message"]["content"][0]["text"].startswith("You asked")
        span: ReadableSpan = only_span()
        assert span.attributes[semconv.USAGE_OUTPUT_TOKENS] == response["usage"]["outputTokens"]

    def test_failing_invoke_parsing_leaves_the_body_readable(
        self,
        spans: InMemorySpanExporter,
        bedrock: Any,
        only_span: Any,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        def broken(*args: Any) -> Any:
            raise RuntimeError("assay bug")

        monkeypatch.setattr(_bedrock_bodies, "response_attributes", broken)
        data = bedrock.invoke_model(modelId=CLAUDE, body=anthropic_body())["body"].read()
        assert json.loads(data)["type"] == "message"
        assert only_span().status.status_code is StatusCode.UNSET

    def test_failing_stream_reader_keeps_events_flowing(
        self,
        spans: InMemorySpanExporter,
        bedrock: Any,
        only_span: Any,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        def broken(self: Any, event: Any) -> None:
            raise RuntimeError("assay bug")

        monkeypatch.setattr(_converse.ConverseEvents, "add", broken)
        events = list(bedrock.converse_stream(modelId=NOVA, messages=QUESTION)["stream"])
        assert events[-1]["metadata"]["usage"]["outputTokens"] > 0
        assert only_span().end_time is not None

    def test_failing_pricing_keeps_tokens(
        self,
        spans: InMemorySpanExporter,
        bedrock: Any,
        only_span: Any,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        def broken(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("price table bug")

        monkeypatch.setattr(pricing, "cost_usd", broken)
        response = bedrock.converse(modelId=NOVA, messages=QUESTION)
        attrs = only_span().attributes
        assert attrs[semconv.USAGE_INPUT_TOKENS] == response["usage"]["inputTokens"]
        assert semconv.COST_USD not in attrs

    def test_malformed_response_body_reaches_the_user_unchanged(
        self, spans: InMemorySpanExporter, bedrock: Any, only_span: Any
    ) -> None:
        response = bedrock.invoke_model(modelId=FAIL_MALFORMED, body=anthropic_body())
        assert response["body"].read() == MALFORMED_BODY
        span = only_span()
        assert span.status.status_code is StatusCode.UNSET
        assert semconv.OUTPUT_MESSAGES not in span.attributes
        # the body could not be parsed; the service's token headers still count
        assert span.attributes[semconv.USAGE_INPUT_TOKENS] > 0
        assert span.attributes[semconv.USAGE_OUTPUT_TOKENS] > 0

    def test_abandoned_stream_ends_its_span_on_garbage_collection(
        self, spans: InMemorySpanExporter, bedrock: Any, only_span: Any
    ) -> None:
        response = bedrock.invoke_model_with_response_stream(modelId=CLAUDE, body=anthropic_body())
        next(iter(response["body"]))
        del response
        gc.collect()
        attrs = only_span().attributes
        assert attrs[semconv.STREAM_CLOSED_EARLY] is True
        assert attrs[semconv.RESPONSE_ID] == "msg_bdrk_stream"  # what arrived is kept


@pytest.mark.parametrize(
    ("model_id", "table_key"),
    [
        ("amazon.nova-lite-v1:0", "nova-lite"),
        ("us.amazon.nova-pro-v1:0", "nova-pro"),
        (
            "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.amazon.nova-micro-v1:0",
            "nova-micro",
        ),
        ("amazon.titan-text-express-v1", "titan-text-express"),
        ("amazon.titan-embed-text-v1", "amazon.titan-embed-text-v1"),
        ("amazon.titan-embed-text-v2:0", "amazon.titan-embed-text-v2:0"),
        ("meta.llama3-1-8b-instruct-v1:0", "llama3-1-8b-instruct"),
        ("us.anthropic.claude-3-5-haiku-20241022-v1:0", "claude-3-5-haiku"),
        ("eu.anthropic.claude-sonnet-4-20250514-v1:0", "claude-sonnet-4"),
    ],
)
def test_bedrock_model_ids_find_their_prices(model_id: str, table_key: str) -> None:
    price = pricing.lookup(model_id, semconv.PROVIDER_AWS_BEDROCK)
    assert price is not None and price.model == table_key


def test_an_exporter_that_fails_leaves_the_calls_alone(bedrock: Any) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter

    class Down(SpanExporter):
        def export(self, spans: Any) -> Any:
            raise ConnectionError("collector down")

    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(Down()))
    instrumentor = bedrock_provider.BedrockInstrumentor()
    uninstrument()
    instrumentor.instrument(tracer_provider=provider, capture_content=True)
    try:
        reply = bedrock.converse(modelId=NOVA, messages=QUESTION)
        events = list(bedrock.converse_stream(modelId=NOVA, messages=QUESTION)["stream"])
    finally:
        instrumentor.uninstrument()
    assert reply["output"]["message"]["content"][0]["text"].startswith("You asked")
    assert events[-1]["metadata"]["usage"]["outputTokens"] > 0


def test_other_operations_of_the_runtime_client_make_no_span(
    spans: InMemorySpanExporter, bedrock: Any
) -> None:
    verdict = bedrock.apply_guardrail(
        guardrailIdentifier="g-1",
        guardrailVersion="1",
        source="INPUT",
        content=[{"text": {"text": "hello"}}],
    )
    assert verdict["action"] == "NONE"
    assert spans.get_finished_spans() == ()
