"""A local fake of the Gemini Developer API (`generateContent`, `streamGenerateContent?alt=sse`).

Answers are deterministic: the reply repeats the last user text; with function
declarations in the request (and no function response yet) the model calls the first
function. Usage: `word_tokens` of every text sent; models named `*2.5*` also report
`THOUGHTS_TOKENS` thinking tokens, as thinking models do; a request naming `cachedContent`
reads half its prompt tokens from that cache. Streams are SSE events whose
data is a whole GenerateContentResponse, usage on every chunk and complete on the last.
Models `fail-400`, `fail-500` answer with Google's error body; `fail-midstream` hangs up
after two chunks.
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
    thirds,
    tool_arguments,
    word_tokens,
)

FAIL_400 = "fail-400"
FAIL_500 = "fail-500"
FAIL_MIDSTREAM = "fail-midstream"
THOUGHTS_TOKENS = 7
_SCHEMA_KEYS = ("parameters", "parametersJsonSchema", "parameters_json_schema")


def _error(code: int, message: str, status: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "status": status}}


def _texts(contents: list[dict[str, Any]]) -> list[str]:
    return [part["text"] for c in contents for part in c.get("parts", ()) if "text" in part]


def _sse(data: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(data).encode() + b"\r\n\r\n"


class FakeGemini(FakeServer):
    def reply(self, request: Request) -> Reply:
        model, _, method = request.path.rsplit("/", 1)[-1].partition(":")
        if model == FAIL_400:
            return Reply(
                400,
                _error(400, "API key not valid. Please pass a valid API key.", "INVALID_ARGUMENT"),
            )
        if model == FAIL_500:
            return Reply(500, _error(500, "An internal error has occurred.", "INTERNAL"))
        body = request.body or {}
        if method == "streamGenerateContent":
            return Reply(
                stream=self._chunks(model, body),
                content_type="text/event-stream",
                drop_after=2 if model == FAIL_MIDSTREAM else None,
            )
        parts = self._parts(body)
        return Reply(body=self._response(model, body, [parts], finish=True, complete=True))

    # -- the model

    @staticmethod
    def _parts(body: dict[str, Any]) -> list[dict[str, Any]]:
        contents = body.get("contents", [])
        last = contents[-1] if contents else {}
        answered = any("functionResponse" in part for part in last.get("parts", ()))
        for tool in body.get("tools", ()):
            for declaration in tool.get("functionDeclarations", ()):
                if answered:
                    break
                # The client sends the JSON schema under its snake_case name.
                schema = next(
                    (declaration[key] for key in _SCHEMA_KEYS if key in declaration), None
                )
                args = tool_arguments(schema)
                return [{"functionCall": {"name": declaration["name"], "args": args}}]
        texts = _texts([last])
        return [{"text": reply_text(texts[-1] if texts else None)}]

    def _usage(
        self, model: str, body: dict[str, Any], parts: list[dict[str, Any]] | None
    ) -> dict[str, Any]:
        texts = _texts(body.get("contents", []))
        system = body.get("systemInstruction")
        if system:
            texts += _texts([system])
        prompt = sum(word_tokens(text) for text in texts) + 3 * len(body.get("contents", []))
        usage: dict[str, Any] = {"promptTokenCount": prompt, "totalTokenCount": prompt}
        if body.get("cachedContent"):
            # Gemini counts cached tokens inside promptTokenCount and names them apart.
            usage["cachedContentTokenCount"] = prompt // 2
        if parts is not None:
            candidates = sum(word_tokens(p["text"]) if "text" in p else 5 for p in parts)
            usage["candidatesTokenCount"] = candidates
            usage["totalTokenCount"] += candidates
            if "2.5" in model:
                usage["thoughtsTokenCount"] = THOUGHTS_TOKENS
                usage["totalTokenCount"] += THOUGHTS_TOKENS
        return usage

    def _response(
        self,
        model: str,
        body: dict[str, Any],
        pieces: list[list[dict[str, Any]]],
        *,
        finish: bool,
        complete: bool,
    ) -> dict[str, Any]:
        parts = pieces[-1]
        candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
        if finish:
            candidate["finishReason"] = "STOP"
        everything = [p for piece in pieces for p in piece]
        digest = hashlib.sha1(json.dumps(body, sort_keys=True).encode()).hexdigest()[:22]
        return {
            "candidates": [candidate],
            "usageMetadata": self._usage(model, body, everything if complete else None),
            "modelVersion": model,
            "responseId": digest,
        }

    def _chunks(self, model: str, body: dict[str, Any]) -> Iterator[bytes]:
        parts = self._parts(body)
        if "text" in parts[0]:
            pieces = [[{"text": text}] for text in thirds(parts[0]["text"])]
        else:
            pieces = [parts]
        for count in range(len(pieces)):
            last = count == len(pieces) - 1
            yield _sse(self._response(model, body, pieces[: count + 1], finish=last, complete=last))
