"""A local fake of the Amazon Bedrock runtime API, its real wire format on loopback, for botocore.

::

    with FakeBedrock() as fake:
        client = boto3.client("bedrock-runtime", **fake.client_options())
        client.converse(modelId="amazon.nova-lite-v1:0", messages=[...])

Routes (REST-JSON, as botocore builds them): `POST /model/{modelId}/converse`,
`/converse-stream`, `/invoke` and `/invoke-with-response-stream`; `ApplyGuardrail` answers
"no intervention" (an operation of the same client that is not an LLM call). The two streams are
sent in the AWS event-stream binary framing (prelude, headers, payload, CRC32s), so
botocore's own `EventStream` parser reads them. `invoke` speaks the body formats of
Anthropic Claude (messages), Amazon Nova (messages-v1), Amazon Titan Text, Titan
Embeddings and Meta Llama, chosen by the model id; it also sends the `X-Amzn-Bedrock-*-Token-Count`
headers the real service adds.

Answers are deterministic: the reply quotes the last user text, token counts come from
`count_tokens` of the fake OpenAI server. A request whose system prompt ends with a
`cachePoint` block reports the system prompt as cache-read tokens. When tools are
offered and the last turn is not a tool result, the model asks for the first tool.

Model ids that fail on purpose: `fail-throttle` (HTTP 429 ThrottlingException),
`fail-validation` (HTTP 400 ValidationException), `fail-midstream` (a stream that sends
a few events, then a `modelStreamErrorException` event), `fail-malformed` (InvokeModel
answers 200 with a truncated JSON body, token headers intact).
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from assay.collector.demo.fake_openai import count_tokens
from assay.collector.demo.fake_server import FakeServer, Reply, Request

__all__ = [
    "FAIL_MALFORMED",
    "FAIL_MIDSTREAM",
    "FAIL_THROTTLE",
    "FAIL_VALIDATION",
    "MALFORMED_BODY",
    "BedrockRequest",
    "FakeBedrock",
    "event_stream_message",
]

FAIL_THROTTLE = "fail-throttle"
FAIL_VALIDATION = "fail-validation"
FAIL_MIDSTREAM = "fail-midstream"
FAIL_MALFORMED = "fail-malformed"
MALFORMED_BODY = b'{"content": [{"type": "text", "text": "cut'

_EVENT_STREAM = "application/vnd.amazon.eventstream"
_STRING_HEADER = 7
_INVOCATION_METRICS = "amazon-bedrock-invocationMetrics"
_PIECE_WORDS = 3  # words per streamed text delta


def event_stream_message(headers: dict[str, str], payload: bytes) -> bytes:
    """One message of the AWS event-stream framing: prelude, its CRC, headers, payload, CRC."""
    encoded = b"".join(
        bytes([len(name)])
        + name.encode()
        + bytes([_STRING_HEADER])
        + struct.pack(">H", len(value.encode()))
        + value.encode()
        for name, value in headers.items()
    )
    prelude = struct.pack(">II", 12 + len(encoded) + len(payload) + 4, len(encoded))
    message = prelude + struct.pack(">I", binascii.crc32(prelude)) + encoded + payload
    return message + struct.pack(">I", binascii.crc32(message))


def _event(event_type: str, body: dict[str, Any]) -> bytes:
    return event_stream_message(
        {":event-type": event_type, ":content-type": "application/json", ":message-type": "event"},
        json.dumps(body).encode(),
    )


def _exception_event(exception_type: str, message: str) -> bytes:
    return event_stream_message(
        {
            ":exception-type": exception_type,
            ":content-type": "application/json",
            ":message-type": "exception",
        },
        json.dumps({"message": message, "originalStatusCode": 500}).encode(),
    )


def _answer(
    body: Any = None,
    raw: bytes | None = None,
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
) -> Reply:
    headers = {"x-amzn-RequestId": "fake-request-id", **(headers or {})}
    return Reply(body=body, raw=raw, content_type=content_type, headers=headers)


def _error(status: int, code: str, message: str) -> Reply:
    reply = _answer(
        body={"message": message}, headers={"x-amzn-ErrorType": f"{code}:http://internal"}
    )
    reply.status = status
    return reply


def _digest_of(text: str) -> str:
    return binascii.hexlify(text.encode()).decode()[:16]


def _pieces(text: str) -> Iterator[str]:
    words = text.split(" ")
    for start in range(0, len(words), _PIECE_WORDS):
        piece = " ".join(words[start : start + _PIECE_WORDS])
        yield piece if start == 0 else " " + piece


@dataclass(frozen=True)
class BedrockRequest:
    """One request the fake received: the operation (last path segment), model id and body."""

    operation: str
    model_id: str
    body: Any


# --- the conversation, in Converse's shape (Nova's invoke format is the same) ------------------


def _block_text(block: Any) -> str:
    if not isinstance(block, dict):
        return ""
    if "text" in block:
        return str(block["text"])
    result = block.get("toolResult")
    if isinstance(result, dict):
        return " ".join(
            _block_text(part) or json.dumps(part.get("json"))
            for part in result.get("content") or ()
        )
    return ""


def _last_user_text(messages: list[Any]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            text = " ".join(_block_text(b) for b in message.get("content") or ()).strip()
            if text:
                return text
    return ""


def _ends_with_tool_result(messages: list[Any]) -> bool:
    if not messages:
        return False
    return any(
        isinstance(b, dict) and ("toolResult" in b or b.get("type") == "tool_result")
        for b in messages[-1].get("content") or ()
    )


def _reply(messages: list[Any]) -> str:
    if _ends_with_tool_result(messages):
        return "The tool answered; here is the summary you asked for."
    topic = " ".join(_last_user_text(messages).split()[:12]) or "your question"
    return f'You asked: "{topic}". Here is a short and certain answer.'


def _arguments(schema: dict[str, Any], text: str) -> dict[str, Any]:
    properties = schema.get("properties") or {}
    return {name: " ".join(text.split()[:4]) for name in schema.get("required") or properties}


@dataclass(frozen=True)
class _Usage:
    input: int  # uncached input, as Bedrock and Anthropic count it
    output: int
    cache_read: int


def _usage(messages: list[Any], system: Any, output_text: str) -> _Usage:
    system_blocks = system if isinstance(system, list) else [{"text": system or ""}]
    system_tokens = count_tokens(" ".join(_block_text(b) for b in system_blocks))
    message_tokens = sum(
        3 + count_tokens(" ".join(_block_text(b) for b in m.get("content") or ())) for m in messages
    )
    cached = (
        bool(system_blocks)
        and isinstance(system_blocks[-1], dict)
        and ("cachePoint" in system_blocks[-1])
    )
    return _Usage(
        input=message_tokens + (0 if cached else system_tokens),
        output=count_tokens(output_text),
        cache_read=system_tokens if cached else 0,
    )


@dataclass(frozen=True)
class _Turn:
    """What the model answers to one request: text or a tool call, and its usage."""

    text: str
    tool: tuple[str, str, dict[str, Any]] | None  # (id, name, input)
    stop_reason: str
    usage: _Usage


def _turn(messages: list[Any], system: Any, tools: list[tuple[str, dict[str, Any]]]) -> _Turn:
    if tools and not _ends_with_tool_result(messages):
        name, schema = tools[0]
        arguments = _arguments(schema, _last_user_text(messages))
        tool_id = "tooluse_" + binascii.hexlify(name.encode()).decode()[:16]
        usage = _usage(messages, system, name + json.dumps(arguments))
        return _Turn("", (tool_id, name, arguments), "tool_use", usage)
    text = _reply(messages)
    return _Turn(text, None, "end_turn", _usage(messages, system, text))


def _converse_tools(tool_config: Any) -> list[tuple[str, dict[str, Any]]]:
    tools = []
    for tool in (tool_config or {}).get("tools") or ():
        spec = tool.get("toolSpec") or {}
        tools.append((spec.get("name", ""), (spec.get("inputSchema") or {}).get("json") or {}))
    return tools


def _converse_usage(usage: _Usage) -> dict[str, int]:
    body = {
        "inputTokens": usage.input,
        "outputTokens": usage.output,
        "totalTokens": usage.input + usage.output + usage.cache_read,
    }
    if usage.cache_read:
        body["cacheReadInputTokens"] = usage.cache_read
        body["cacheWriteInputTokens"] = 0
    return body


def _converse_content(turn: _Turn) -> list[dict[str, Any]]:
    if turn.tool is not None:
        tool_id, name, arguments = turn.tool
        return [{"toolUse": {"toolUseId": tool_id, "name": name, "input": arguments}}]
    return [{"text": turn.text}]


class FakeBedrock(FakeServer):
    """A Bedrock runtime endpoint on loopback, in daemon threads; `calls` lists what came."""

    thread_name = "fake-bedrock"

    @property
    def endpoint_url(self) -> str:
        return self.address

    @property
    def calls(self) -> list[BedrockRequest]:
        """The model calls received: operation, model id and body of each."""
        calls = []
        for request in self.received:
            parts = request.path.strip("/").split("/")
            if len(parts) == 3 and parts[0] == "model":
                calls.append(BedrockRequest(parts[2], unquote(parts[1]), request.body))
        return calls

    def reply(self, request: Request) -> Reply:
        parts = request.path.strip("/").split("/")
        if parts[0] == "guardrail":  # ApplyGuardrail: not an LLM call, nothing to trace
            return Reply(body={"action": "NONE", "outputs": [], "assessments": []})
        if len(parts) != 3 or parts[0] != "model":
            return _error(404, "UnknownOperationException", f"No route for {request.path}")
        model_id, operation = unquote(parts[1]), parts[2]
        body = request.body
        if not isinstance(body, dict):
            return _error(400, "ValidationException", "Malformed input request: not JSON")
        if model_id == FAIL_THROTTLE:
            return _error(429, "ThrottlingException", "Too many requests, please wait.")
        if model_id == FAIL_VALIDATION:
            return _error(400, "ValidationException", "The provided model identifier is invalid.")
        if operation == "converse":
            return _answer(body=self.converse(model_id, body))
        if operation == "converse-stream":
            events = b"".join(self.converse_events(model_id, body))
            return _answer(raw=events, content_type=_EVENT_STREAM)
        if operation == "invoke":
            response, tokens_in, tokens_out = self.invoke(model_id, body)
            headers = {
                "X-Amzn-Bedrock-Input-Token-Count": str(tokens_in),
                "X-Amzn-Bedrock-Output-Token-Count": str(tokens_out),
                "X-Amzn-Bedrock-Invocation-Latency": "20",
            }
            raw = MALFORMED_BODY if model_id == FAIL_MALFORMED else json.dumps(response).encode()
            return _answer(raw=raw, headers=headers)
        if operation == "invoke-with-response-stream":
            chunks = [
                _event("chunk", {"bytes": base64.b64encode(json.dumps(chunk).encode()).decode()})
                for chunk in self.invoke_chunks(model_id, body)
            ]
            if model_id == FAIL_MIDSTREAM:
                chunks = [*chunks[:2], _exception_event("modelStreamErrorException", "Stopped.")]
            return _answer(raw=b"".join(chunks), content_type=_EVENT_STREAM)
        return _error(404, "UnknownOperationException", f"Unknown operation {operation}")

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for `boto3.client("bedrock-runtime", ...)` aimed at this fake."""
        from botocore.config import Config

        return {
            "endpoint_url": self.endpoint_url,
            "region_name": "us-east-1",
            "aws_access_key_id": "AKIDFAKE",
            "aws_secret_access_key": "fake-secret",
            "config": Config(retries={"max_attempts": 1, "mode": "standard"}),
        }

    # -- Converse

    def converse(self, model_id: str, request: dict[str, Any]) -> dict[str, Any]:
        messages = request.get("messages") or []
        turn = _turn(messages, request.get("system"), _converse_tools(request.get("toolConfig")))
        return {
            "output": {"message": {"role": "assistant", "content": _converse_content(turn)}},
            "stopReason": turn.stop_reason,
            "usage": _converse_usage(turn.usage),
            "metrics": {"latencyMs": 12},
        }

    def converse_events(self, model_id: str, request: dict[str, Any]) -> Iterator[bytes]:
        """The ConverseStream answer, framed as event-stream messages."""
        for event_type, body in self._converse_stream(model_id, request):
            if event_type == "error":
                yield _exception_event("modelStreamErrorException", "The model stopped.")
                return
            yield _event(event_type, body)

    def _converse_stream(
        self, model_id: str, request: dict[str, Any]
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        messages = request.get("messages") or []
        turn = _turn(messages, request.get("system"), _converse_tools(request.get("toolConfig")))
        yield "messageStart", {"role": "assistant"}
        if turn.tool is not None:
            tool_id, name, arguments = turn.tool
            start = {"toolUse": {"toolUseId": tool_id, "name": name}}
            yield "contentBlockStart", {"contentBlockIndex": 0, "start": start}
            encoded = json.dumps(arguments)
            middle = len(encoded) // 2
            for fragment in (encoded[:middle], encoded[middle:]):
                delta = {"toolUse": {"input": fragment}}
                yield "contentBlockDelta", {"contentBlockIndex": 0, "delta": delta}
        else:
            for number, piece in enumerate(_pieces(turn.text)):
                if number == 2 and model_id == FAIL_MIDSTREAM:
                    yield "error", {}
                    return
                yield "contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": piece}}
        yield "contentBlockStop", {"contentBlockIndex": 0}
        yield "messageStop", {"stopReason": turn.stop_reason}
        metadata = {"usage": _converse_usage(turn.usage), "metrics": {"latencyMs": 12}}
        yield "metadata", metadata

    # -- InvokeModel: the body formats of each model family

    def invoke(self, model_id: str, body: dict[str, Any]) -> tuple[dict[str, Any], int, int]:
        """The response body and the (input, output) token counts of the headers."""
        if "titan-embed" in model_id:
            tokens = count_tokens(str(body.get("inputText", "")))
            vector = [round(0.01 * (i % 7), 2) for i in range(int(body.get("dimensions", 8)))]
            return {"embedding": vector, "inputTextTokenCount": tokens}, tokens, 0
        if "titan-text" in model_id:
            prompt = str(body.get("inputText", ""))
            text = _reply([{"role": "user", "content": [{"text": prompt}]}])
            tokens_in, tokens_out = count_tokens(prompt), count_tokens(text)
            result = {"tokenCount": tokens_out, "outputText": text, "completionReason": "FINISH"}
            return {"inputTextTokenCount": tokens_in, "results": [result]}, tokens_in, tokens_out
        if "prompt" in body and ("anthropic." in model_id or "cohere.command" in model_id):
            return self._text_completion(model_id, str(body["prompt"]))
        if "anthropic." in model_id:
            turn = self._anthropic_turn(body)
            usage = {"input_tokens": turn.usage.input, "output_tokens": turn.usage.output}
            if turn.usage.cache_read:
                usage["cache_read_input_tokens"] = turn.usage.cache_read
                usage["cache_creation_input_tokens"] = 0
            response = {
                "id": "msg_bdrk_" + binascii.hexlify(turn.text.encode()).decode()[:20],
                "type": "message",
                "role": "assistant",
                "model": model_id.split(".", 1)[-1].split("-v")[0],
                "content": self._anthropic_content(turn),
                "stop_reason": turn.stop_reason,
                "stop_sequence": None,
                "usage": usage,
            }
            return response, turn.usage.input, turn.usage.output
        if "meta.llama" in model_id:
            prompt = str(body.get("prompt", ""))
            text = _reply([{"role": "user", "content": [{"text": prompt}]}])
            tokens_in, tokens_out = count_tokens(prompt), count_tokens(text)
            response = {
                "generation": text,
                "prompt_token_count": tokens_in,
                "generation_token_count": tokens_out,
                "stop_reason": "stop",
            }
            return response, tokens_in, tokens_out
        # Amazon Nova: the Converse shapes inside the body.
        response = self.converse(model_id, body)
        usage = response["usage"]
        return response, usage["inputTokens"], usage["outputTokens"]

    @staticmethod
    def _text_completion(model_id: str, prompt: str) -> tuple[dict[str, Any], int, int]:
        """The older text bodies: Claude's Text Completions (`completion`, `stop_reason`, `stop`)
        and Cohere Command's (`generations`), token counts in the headers only."""
        text = _reply([{"role": "user", "content": [{"text": prompt}]}])
        tokens_in, tokens_out = count_tokens(prompt), count_tokens(text)
        if "anthropic." in model_id:
            response = {
                "completion": " " + text,
                "stop_reason": "stop_sequence",
                "stop": "\n\nHuman:",
            }
            return response, tokens_in, tokens_out
        generation = {
            "id": "gen-" + _digest_of(prompt),
            "text": " " + text,
            "finish_reason": "COMPLETE",
        }
        response = {"id": "cmd-" + _digest_of(text), "generations": [generation], "prompt": prompt}
        return response, tokens_in, tokens_out

    @staticmethod
    def _anthropic_turn(body: dict[str, Any]) -> _Turn:
        messages = [
            {
                "role": m.get("role"),
                "content": [
                    {"text": m["content"]}
                    if isinstance(m.get("content"), str)
                    else {"text": " ".join(str(b.get("text", "")) for b in m["content"])}
                    if not any(b.get("type") == "tool_result" for b in m["content"])
                    else {"toolResult": {"content": []}}
                ],
            }
            for m in body.get("messages") or []
        ]
        system = body.get("system")
        if isinstance(system, list):  # content blocks, maybe with cache_control
            cached = bool(system) and "cache_control" in system[-1]
            system = [{"text": " ".join(str(b.get("text", "")) for b in system)}]
            if cached:
                system.append({"cachePoint": {"type": "default"}})
        tools = [(t.get("name", ""), t.get("input_schema") or {}) for t in body.get("tools") or ()]
        return _turn(messages, system, tools)

    @staticmethod
    def _anthropic_content(turn: _Turn) -> list[dict[str, Any]]:
        if turn.tool is not None:
            tool_id, name, arguments = turn.tool
            return [{"type": "tool_use", "id": tool_id, "name": name, "input": arguments}]
        return [{"type": "text", "text": turn.text}]

    def invoke_chunks(self, model_id: str, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """The JSON chunks of invoke-with-response-stream (Anthropic, Nova and Titan Text)."""
        if "nova" in model_id:
            events = list(self._converse_stream(model_id, body))
            for event_type, event in events:
                yield {event_type: event}
            usage = events[-1][1]["usage"]
            metrics = {
                "inputTokenCount": usage["inputTokens"],
                "outputTokenCount": usage["outputTokens"],
            }
            yield {_INVOCATION_METRICS: metrics}
            return
        if "meta.llama" in model_id:
            response, tokens_in, tokens_out = self.invoke(model_id, body)
            pieces = list(_pieces(response["generation"]))
            for number, piece in enumerate(pieces):
                last = number == len(pieces) - 1
                chunk = {
                    "generation": piece,
                    "prompt_token_count": tokens_in if number == 0 else None,
                    "generation_token_count": number + 1,
                    "stop_reason": "stop" if last else None,
                }
                if last:
                    chunk[_INVOCATION_METRICS] = {
                        "inputTokenCount": tokens_in,
                        "outputTokenCount": tokens_out,
                    }
                yield chunk
            return
        if "titan-text" in model_id:
            response, tokens_in, tokens_out = self.invoke(model_id, body)
            text = response["results"][0]["outputText"]
            pieces = list(_pieces(text))
            for number, piece in enumerate(pieces):
                chunk: dict[str, Any] = {"outputText": piece, "index": 0}
                if number == 0:
                    chunk["inputTextTokenCount"] = tokens_in
                if number == len(pieces) - 1:
                    chunk["completionReason"] = "FINISH"
                    chunk["totalOutputTextTokenCount"] = tokens_out
                    chunk[_INVOCATION_METRICS] = {
                        "inputTokenCount": tokens_in,
                        "outputTokenCount": tokens_out,
                    }
                yield chunk
            return
        turn = self._anthropic_turn(body)
        message = {
            "id": "msg_bdrk_stream",
            "type": "message",
            "role": "assistant",
            "model": model_id.split(".", 1)[-1].split("-v")[0],
            "content": [],
            "stop_reason": None,
            "usage": {"input_tokens": turn.usage.input, "output_tokens": 1},
        }
        yield {"type": "message_start", "message": message}
        if turn.tool is not None:
            tool_id, name, arguments = turn.tool
            block = {"type": "tool_use", "id": tool_id, "name": name, "input": {}}
            yield {"type": "content_block_start", "index": 0, "content_block": block}
            delta = {"type": "input_json_delta", "partial_json": json.dumps(arguments)}
            yield {"type": "content_block_delta", "index": 0, "delta": delta}
        else:
            yield {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            }
            for piece in _pieces(turn.text):
                delta = {"type": "text_delta", "text": piece}
                yield {"type": "content_block_delta", "index": 0, "delta": delta}
        yield {"type": "content_block_stop", "index": 0}
        yield {
            "type": "message_delta",
            "delta": {"stop_reason": turn.stop_reason, "stop_sequence": None},
            "usage": {"output_tokens": turn.usage.output},
        }
        yield {
            "type": "message_stop",
            _INVOCATION_METRICS: {
                "inputTokenCount": turn.usage.input,
                "outputTokenCount": turn.usage.output,
                "invocationLatency": 20,
                "firstByteLatency": 5,
            },
        }
