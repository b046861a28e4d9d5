"""A local fake of the Ollama server API (`POST /api/chat`, `POST /api/generate`).

Plain answers are one JSON object; streams (the default in Ollama's API) are NDJSON:
pieces with `done: false`, then a `done: true` object with `done_reason` and the counts.
The reply echoes the last user text (or the prompt); with `tools` (and no tool result
yet) the model calls the first tool, arguments as an object, as Ollama does. Models:
`missing` answers 404 with Ollama's "not found" error; `fail-midstream` sends an
`{"error": ...}` line after two pieces, as Ollama reports a failure mid-stream;
`cached-prompt` leaves out `prompt_eval_count`, as Ollama does when the whole prompt came
from its cache.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tests.fakes._server import (
    FakeServer,
    Reply,
    Request,
    ndjson,
    reply_text,
    thirds,
    tool_arguments,
    word_tokens,
)

MISSING = "missing"
FAIL_MIDSTREAM = "fail-midstream"
CACHED_PROMPT = "cached-prompt"
CREATED_AT = "2026-06-01T12:00:00.000000Z"
_TIMINGS = {
    "total_duration": 5191566,
    "load_duration": 2154,
    "prompt_eval_duration": 383809,
    "eval_duration": 4799921,
}


class FakeOllama(FakeServer):
    def reply(self, request: Request) -> Reply:
        body = request.body or {}
        model = body.get("model")
        if model == MISSING:
            return Reply(404, {"error": f"model '{model}' not found"})
        if request.path not in ("/api/chat", "/api/generate"):
            return Reply(404, {"error": "404 page not found"})
        chat = request.path == "/api/chat"
        text, tool_calls, prompt_text = self._answer(body, chat)
        final = {
            "model": model,
            "created_at": CREATED_AT,
            "done": True,
            "done_reason": "stop",
            **_TIMINGS,
        }
        if model != CACHED_PROMPT:
            final["prompt_eval_count"] = word_tokens(prompt_text) + 10
        final["eval_count"] = word_tokens(text) if text else 15
        if body.get("stream", True):
            return Reply(
                stream=self._lines(model, chat, text, tool_calls, final),
                content_type="application/x-ndjson",
            )
        if chat:
            message: dict[str, Any] = {"role": "assistant", "content": text}
            if tool_calls:
                message["tool_calls"] = tool_calls
            return Reply(body={**final, "message": message})
        return Reply(body={**final, "response": text})

    @staticmethod
    def _answer(body: dict[str, Any], chat: bool) -> tuple[str, list[dict[str, Any]], str]:
        if not chat:
            prompt = body.get("prompt") or ""
            return reply_text(prompt or None), [], " ".join([body.get("system") or "", prompt])
        messages = body.get("messages", [])
        prompt_text = " ".join(m.get("content") or "" for m in messages)
        tools = body.get("tools") or []
        if tools and not any(m.get("role") == "tool" for m in messages):
            function = tools[0]["function"]
            call = {
                "function": {
                    "name": function["name"],
                    "arguments": tool_arguments(function.get("parameters")),
                }
            }
            return "", [call], prompt_text
        users = [m.get("content") for m in messages if m.get("role") == "user"]
        return reply_text(users[-1] if users else None), [], prompt_text

    @staticmethod
    def _lines(
        model: str, chat: bool, text: str, tool_calls: list[dict[str, Any]], final: dict[str, Any]
    ) -> Iterator[bytes]:
        def piece(content: str, calls: list[dict[str, Any]] | None = None) -> dict[str, Any]:
            base = {"model": model, "created_at": CREATED_AT, "done": False}
            if not chat:
                return {**base, "response": content}
            message: dict[str, Any] = {"role": "assistant", "content": content}
            if calls:
                message["tool_calls"] = calls
            return {**base, "message": message}

        if tool_calls:
            yield ndjson(piece("", tool_calls))
        for count, content in enumerate(thirds(text) if text else ()):
            if model == FAIL_MIDSTREAM and count == 2:
                yield ndjson(
                    {"error": "an error was encountered while running the model: unexpected EOF"}
                )
                return
            yield ndjson(piece(content))
        closing = {"role": "assistant", "content": ""} if chat else None
        yield ndjson({**final, "message": closing} if chat else {**final, "response": ""})
