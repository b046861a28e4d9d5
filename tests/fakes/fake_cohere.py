"""A local fake of Cohere's v2 chat API (`POST /v2/chat`, JSON or typed SSE events).

The reply echoes the last user text; with `tools` (and no tool result yet) the model
writes a tool plan and calls the first tool, finish reason `TOOL_CALL`. Streams are
`event:`/`data:` pairs: message-start, content-start/delta/end (or tool-plan-delta and
tool-call-start/delta/end, the arguments in fragments), message-end with the finish reason
and usage. Usage has `billed_units` and `tokens` (the latter with the prompt template's
overhead, as the API reports it). Models `fail-400`, `fail-429`, `fail-500` answer with
Cohere's error bodies; `fail-midstream` hangs up after two events.
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

FAIL_400 = "fail-400"
FAIL_429 = "fail-429"
FAIL_500 = "fail-500"
FAIL_MIDSTREAM = "fail-midstream"
TEMPLATE_TOKENS = 64  # the system preamble Cohere adds: in `tokens`, not in `billed_units`
TOOL_PLAN = "I will call the tool to answer."
_ERRORS = {
    FAIL_400: (
        400,
        "invalid request: message must be at least 1 token long or tool results must be specified.",
    ),
    FAIL_429: (429, "You are using a Trial key, which is limited to 10 API calls / minute."),
    FAIL_500: (500, "internal server error, this has been reported to our developers."),
}


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(item.get("text", "") for item in content or () if isinstance(item, dict))


class FakeCohere(FakeServer):
    def reply(self, request: Request) -> Reply:
        body = request.body or {}
        model = body.get("model")
        if model in _ERRORS:
            status, message = _ERRORS[model]
            return Reply(status, {"id": "5a0f3c2e-err", "message": message})
        if request.path != "/v2/chat":
            return Reply(404, {"message": f"route {request.path} not found"})
        answer = self._answer(body)
        if body.get("stream"):
            return Reply(
                stream=self._events(body, answer),
                content_type="text/event-stream",
                drop_after=2 if model == FAIL_MIDSTREAM else None,
            )
        return Reply(body={"id": self._id(body), **answer, "usage": self._usage(body, answer)})

    @staticmethod
    def _id(body: dict[str, Any]) -> str:
        digest = hashlib.sha1(json.dumps(body, sort_keys=True).encode()).hexdigest()
        return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"

    @staticmethod
    def _answer(body: dict[str, Any]) -> dict[str, Any]:
        messages = body.get("messages", [])
        tools = body.get("tools") or []
        if tools and not any(m.get("role") == "tool" for m in messages):
            function = tools[0]["function"]
            call = {
                "id": f"{function['name']}_1byjy32y4hvq",
                "type": "function",
                "function": {
                    "name": function["name"],
                    "arguments": json.dumps(tool_arguments(function.get("parameters"))),
                },
            }
            message = {"role": "assistant", "tool_plan": TOOL_PLAN, "tool_calls": [call]}
            return {"finish_reason": "TOOL_CALL", "message": message}
        users = [_text(m.get("content")) for m in messages if m.get("role") == "user"]
        text = reply_text(users[-1] if users else None)
        message = {"role": "assistant", "content": [{"type": "text", "text": text}]}
        return {"finish_reason": "COMPLETE", "message": message}

    @staticmethod
    def _usage(body: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
        billed_in = sum(word_tokens(_text(m.get("content"))) for m in body.get("messages", []))
        message = answer["message"]
        out = sum(word_tokens(c["text"]) for c in message.get("content", ()))
        out += sum(word_tokens(TOOL_PLAN) + 10 for _ in message.get("tool_calls", ()))
        return {
            "billed_units": {"input_tokens": billed_in, "output_tokens": out},
            "tokens": {"input_tokens": billed_in + TEMPLATE_TOKENS, "output_tokens": out + 2},
        }

    def _events(self, body: dict[str, Any], answer: dict[str, Any]) -> Iterator[bytes]:
        def event(kind: str, **fields: Any) -> bytes:
            return sse({"type": kind, **fields}, event=kind)

        start = {
            "role": "assistant",
            "content": [],
            "tool_plan": "",
            "tool_calls": [],
            "citations": [],
        }
        yield event("message-start", id=self._id(body), delta={"message": start})
        message = answer["message"]
        if message.get("tool_calls"):
            for piece in thirds(message["tool_plan"]):
                yield event("tool-plan-delta", delta={"message": {"tool_plan": piece}})
            for index, call in enumerate(message["tool_calls"]):
                opening = {**call, "function": {**call["function"], "arguments": ""}}
                yield event(
                    "tool-call-start", index=index, delta={"message": {"tool_calls": opening}}
                )
                for piece in thirds(call["function"]["arguments"]):
                    fragment = {"function": {"arguments": piece}}
                    yield event(
                        "tool-call-delta", index=index, delta={"message": {"tool_calls": fragment}}
                    )
                yield event("tool-call-end", index=index)
        else:
            text = message["content"][0]["text"]
            yield event(
                "content-start",
                index=0,
                delta={"message": {"content": {"type": "text", "text": ""}}},
            )
            for piece in thirds(text):
                yield event(
                    "content-delta", index=0, delta={"message": {"content": {"text": piece}}}
                )
            yield event("content-end", index=0)
        end = {"finish_reason": answer["finish_reason"], "usage": self._usage(body, answer)}
        yield event("message-end", delta=end)
