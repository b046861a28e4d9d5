"""A local fake of Mistral's chat completions API (`POST /v1/chat/completions`, JSON or SSE).

The reply echoes the last user text; with `tools` (and no tool result yet) the model
calls the first one, arguments as a JSON string, finish reason `tool_calls`. Streams are
`data: {chunk}` events ending with `data: [DONE]`, usage on the last chunk. Models
`fail-401` (Mistral's unauthorized body), `fail-500` and `fail-midstream` (hangs up after
two events) fail on purpose; `no-usage` streams without a usage object
(the non-streamed answer always has one: the client requires it).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

from tests.fakes._server import (
    FakeServer,
    Reply,
    Request,
    reply_text,
    sse,
    thirds,
    tool_arguments,
    word_tokens,
)

FAIL_401 = "fail-401"
FAIL_500 = "fail-500"
FAIL_MIDSTREAM = "fail-midstream"
NO_USAGE = "no-usage"
CREATED = 1_750_000_000


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(chunk.get("text", "") for chunk in content or () if isinstance(chunk, dict))


class FakeMistral(FakeServer):
    def reply(self, request: Request) -> Reply:
        body = request.body or {}
        model = body.get("model")
        if model == FAIL_401:
            return Reply(401, {"detail": "Unauthorized", "request_id": "0a1b2c"})
        if model == FAIL_500:
            return Reply(
                500,
                {
                    "object": "error",
                    "message": "Service unavailable.",
                    "type": "internal_server_error",
                    "param": None,
                    "code": "1000",
                },
            )
        if not request.path.endswith("/v1/chat/completions"):
            return Reply(404, {"detail": "Not Found"})
        message, finish = self._answer(body)
        if body.get("stream"):
            return Reply(
                stream=self._events(body, message, finish),
                content_type="text/event-stream",
                drop_after=2 if model == FAIL_MIDSTREAM else None,
            )
        response = {
            "id": self._id(body),
            "object": "chat.completion",
            "created": CREATED,
            "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": self._usage(body, message),
        }
        return Reply(body=response)

    @staticmethod
    def _id(body: dict[str, Any]) -> str:
        return hashlib.sha1(json.dumps(body, sort_keys=True).encode()).hexdigest()[:32]

    @staticmethod
    def _answer(body: dict[str, Any]) -> tuple[dict[str, Any], str]:
        messages = body.get("messages", [])
        tools = body.get("tools") or []
        if tools and not any(m.get("role") == "tool" for m in messages):
            function = tools[0]["function"]
            call = {
                "id": "D681PevKs",
                "type": "function",
                "function": {
                    "name": function["name"],
                    "arguments": json.dumps(tool_arguments(function.get("parameters"))),
                },
                "index": 0,
            }
            return {
                "role": "assistant",
                "content": "",
                "tool_calls": [call],
                "prefix": False,
            }, "tool_calls"
        users = [_text(m.get("content")) for m in messages if m.get("role") == "user"]
        text = reply_text(users[-1] if users else None)
        return {"role": "assistant", "content": text, "tool_calls": None, "prefix": False}, "stop"

    @staticmethod
    def _usage(body: dict[str, Any], message: dict[str, Any]) -> dict[str, int]:
        messages = body.get("messages", [])
        prompt = sum(word_tokens(_text(m.get("content"))) + 3 for m in messages)
        completion = word_tokens(message["content"]) if message["content"] else 12
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }

    def _events(
        self, body: dict[str, Any], message: dict[str, Any], finish: str
    ) -> Iterator[bytes]:
        base = {
            "id": self._id(body),
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": body.get("model"),
        }

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
            return {
                **base,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
            }

        yield sse(chunk({"role": "assistant", "content": ""}))
        if message["tool_calls"]:
            yield sse(chunk({"tool_calls": message["tool_calls"]}))
        else:
            for piece in thirds(message["content"]):
                yield sse(chunk({"content": piece}))
        last = chunk({"content": ""}, finish)
        if body.get("model") != NO_USAGE:
            last["usage"] = self._usage(body, message)
        yield sse(last)
        yield b"data: [DONE]\n\n"
