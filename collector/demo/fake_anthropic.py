"""A local fake of the Anthropic Messages API: its real wire format on loopback, for tests and
`assay fake-provider`.

::

    with FakeAnthropic() as fake:
        client = Anthropic(base_url=fake.base_url, api_key="fake", max_retries=0)
        client.messages.create(model="claude-sonnet-4-5", max_tokens=200, messages=[...])

`POST /v1/messages` answers with a Message as JSON, or with `stream: true` as the
server-sent events Anthropic sends: `message_start`, `ping`, per content block
`content_block_start` / `content_block_delta` / `content_block_stop`, `message_delta`
(stop reason and cumulative usage), `message_stop`. Answers are deterministic:

- a `tool_use` block when the request offers tools and its last turn is not a tool result;
- a `thinking` block first when `thinking.type` is `enabled`;
- `max_tokens` cuts the text (stop reason `max_tokens`), a stop sequence found in it
  cuts it there (`stop_sequence`);
- prompt caching as the API does it: the prefix up to the last block marked with
  `cache_control` is written to the cache on first sight (`cache_creation_input_tokens`)
  and read from it afterwards (`cache_read_input_tokens`); `input_tokens` counts only
  the tokens after it.

`script` scripts the text answers as FakeOpenAI's does (the system prompt counts as a message);
an entry whose reply is a `Failure(status)`, or the header `x-fake-error: STATUS`, fails the
request with Anthropic's error body for that status (400, 401, 429, 500, 529).
Special models fail on purpose with Anthropic's error bodies too: `fail-429`
(`rate_limit_error`), `fail-529` (`overloaded_error`), `fail-400`
(`invalid_request_error`), and `fail-midstream`, whose stream sends an `error` event
after a few events, as the API does when it is overloaded mid-answer; the header
`x-fake-error: midstream` does the same to a stream of any model (a priced one).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

from assay.collector.demo.fake_openai import Script, count_tokens, default_reply, scripted_reply
from assay.collector.demo.fake_server import (
    FAIL_HEADER,
    Failure,
    FakeServer,
    Reply,
    Request,
    failure_asked,
    sse,
)

FAIL_429 = "fail-429"
FAIL_529 = "fail-529"
FAIL_400 = "fail-400"
FAIL_MIDSTREAM = "fail-midstream"
_MIDSTREAM_EVENTS = 4  # message_start (with the input usage), ping, a block's start and delta


def _fails_midstream(request: Request, model: Any) -> bool:
    return model == FAIL_MIDSTREAM or request.headers.get(FAIL_HEADER, "").strip() == "midstream"


# The snapshot each alias points to; the API answers with these in `model`.
RESPONSE_MODELS = {
    "claude-sonnet-4-5": "claude-sonnet-4-5-20250929",
    "claude-haiku-4-5": "claude-haiku-4-5-20251001",
    "claude-opus-4-1": "claude-opus-4-1-20250805",
    "claude-3-5-haiku-latest": "claude-3-5-haiku-20241022",
}

# status → (error type, message), as the API answers them
_ERRORS = {
    400: ("invalid_request_error", "messages: at least one message is required"),
    401: ("authentication_error", "invalid x-api-key"),
    429: ("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit"),
    500: ("api_error", "Internal server error"),
    529: ("overloaded_error", "Overloaded"),
}
_FAILING_MODELS = {FAIL_429: 429, FAIL_529: 529, FAIL_400: 400}


def _digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _blocks(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [b for b in content or () if isinstance(b, dict)]


def _block_text(block: dict[str, Any]) -> str:
    kind = block.get("type")
    if kind == "text":
        return str(block.get("text", ""))
    if kind == "tool_use":
        return f"{block.get('name', '')} {json.dumps(block.get('input'))}"
    if kind == "tool_result":
        return " ".join(_block_text(b) for b in _blocks(block.get("content")))
    return ""


def _is_tool_result_turn(message: dict[str, Any]) -> bool:
    return message.get("role") == "user" and any(
        b.get("type") == "tool_result" for b in _blocks(message.get("content"))
    )


class FakeAnthropic(FakeServer):
    """An Anthropic Messages API server on loopback, in daemon threads.

    `mutate(body) -> body`, when given, rewrites every successful JSON body and every
    stream event before it is sent: malformed answers on purpose, for robustness tests.
    Every request body received is in `requests`.
    """

    thread_name = "fake-anthropic"

    def __init__(
        self,
        *,
        script: Script | None = None,
        mutate: Callable[[dict[str, Any]], Any] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.script = dict(script or {})
        self.mutate = mutate
        self._cached_prefixes: set[str] = set()
        self._lock = threading.Lock()
        super().__init__(host, port)

    def reply(self, request: Request) -> Reply:
        body = request.body
        if not isinstance(body, dict):
            return self._json(_error_body("invalid_request_error", "Invalid JSON body"), 400)
        model = body.get("model")
        if request.path.rstrip("/") != "/v1/messages":
            return self._json(_error_body("not_found_error", f"Not found: {request.path}"), 404)
        failure = self.failure(request, body)
        if failure is not None:
            kind, message = _ERRORS.get(failure.status, _ERRORS[500])
            return self._json(_error_body(kind, message), failure.status)
        if body.get("stream"):
            return Reply(
                stream=self._sse(self.events(body), fail=_fails_midstream(request, model)),
                content_type="text/event-stream; charset=utf-8",
                headers={"cache-control": "no-cache", "request-id": _REQUEST_ID},
            )
        return self._json(self.message(body))

    def failure(self, request: Request, body: dict[str, Any]) -> Failure | None:
        """The failure asked for: by a `fail-*` model name, the header or a script entry."""
        model = body.get("model")
        if model in _FAILING_MODELS:
            return Failure(_FAILING_MODELS[model])
        asked = failure_asked(request)
        if asked is not None or not self.script:
            return asked
        scripted = scripted_reply(self.script, _as_chat(body))
        return scripted if isinstance(scripted, Failure) else None

    def _json(self, body: dict[str, Any], status: int = 200) -> Reply:
        if self.mutate is not None and status == 200:
            body = self.mutate(body)
        headers = {"request-id": _REQUEST_ID}
        if status == 429:
            headers["retry-after"] = "0"
        return Reply(status, body, headers=headers)

    def _sse(self, events: Iterator[tuple[str, dict[str, Any]]], fail: bool) -> Iterator[bytes]:
        for count, (name, data) in enumerate(events):
            if fail and count == _MIDSTREAM_EVENTS:
                # As the API does when it is overloaded mid-answer: an error event, then the end.
                error = _error_body("overloaded_error", "Overloaded")
                del error["request_id"]
                yield sse(error, "error")
                return
            yield sse(self.mutate(data) if self.mutate is not None else data, name)

    # -- answers, as JSON-ready dicts -------------------------------------------------------

    def usage(self, request: dict[str, Any]) -> dict[str, int]:
        """Input-side usage: uncached input, cache reads and cache writes, as the API counts."""
        segments: list[tuple[int, bool]] = []  # (tokens, marked with cache_control)
        for tool in request.get("tools") or ():
            segments.append((count_tokens(json.dumps(tool)), "cache_control" in tool))
        system = request.get("system")
        for block in _blocks(system):
            segments.append((count_tokens(_block_text(block)), "cache_control" in block))
        for message in request.get("messages") or ():
            segments.append((3, False))
            for block in _blocks(message.get("content")):
                segments.append((count_tokens(_block_text(block)), "cache_control" in block))
        marked = [i for i, (_, cached) in enumerate(segments) if cached]
        total = sum(tokens for tokens, _ in segments) + 3
        prefix = sum(tokens for tokens, _ in segments[: marked[-1] + 1]) if marked else 0
        read = written = 0
        if prefix:
            key = _digest(
                request.get("model"),
                request.get("tools"),
                system,
                request.get("messages"),
                marked[-1],
            )
            with self._lock:
                if key in self._cached_prefixes:
                    read = prefix
                else:
                    self._cached_prefixes.add(key)
                    written = prefix
        return {
            "input_tokens": total - read - written,
            "cache_creation_input_tokens": written,
            "cache_read_input_tokens": read,
        }

    def content(self, request: dict[str, Any]) -> tuple[list[dict[str, Any]], str, str | None]:
        """The content blocks, the stop reason and the stop sequence of the answer."""
        blocks: list[dict[str, Any]] = []
        messages = request.get("messages") or []
        if (request.get("thinking") or {}).get("type") == "enabled":
            blocks.append(
                {
                    "type": "thinking",
                    "thinking": "The user wants a short answer; keep it to the point.",
                    "signature": "sig_" + _digest(messages)[:32],
                }
            )
        tool = _tool_to_use(request)
        if tool is not None:
            blocks.append(tool)
            return blocks, "tool_use", None
        last_user = next(
            (
                " ".join(_block_text(b) for b in _blocks(m.get("content")))
                for m in reversed(messages)
                if m.get("role") == "user"
            ),
            "",
        )
        scripted = scripted_reply(self.script, _as_chat(request)) if self.script else None
        text = (
            scripted
            if isinstance(scripted, str)
            else default_reply(
                {
                    "model": request.get("model"),
                    "messages": [{"role": "user", "content": last_user}],
                }
            )
        )
        stop_reason, stop_sequence = "end_turn", None
        for sequence in request.get("stop_sequences") or ():
            if sequence in text:
                text, stop_reason, stop_sequence = (
                    text.split(sequence)[0],
                    "stop_sequence",
                    sequence,
                )
                break
        limit = request.get("max_tokens")
        if isinstance(limit, int) and count_tokens(text) > limit:
            text = " ".join(text.split()[: max(1, limit * 3 // 4)])
            stop_reason = "max_tokens"
        blocks.append({"type": "text", "text": text, "citations": None})
        return blocks, stop_reason, stop_sequence

    def message(self, request: dict[str, Any]) -> dict[str, Any]:
        """The JSON body of a non-streamed message."""
        blocks, stop_reason, stop_sequence = self.content(request)
        return {
            **self._head(request),
            "content": blocks,
            "stop_reason": stop_reason,
            "stop_sequence": stop_sequence,
            "usage": {
                **self.usage(request),
                "output_tokens": _output_tokens(blocks),
                "service_tier": "standard",
            },
        }

    def events(self, request: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
        """The (event name, data) pairs of a streamed message, in the API's order."""
        blocks, stop_reason, stop_sequence = self.content(request)
        usage = self.usage(request)
        start = {
            **self._head(request),
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {**usage, "output_tokens": 1, "service_tier": "standard"},
        }
        yield "message_start", {"type": "message_start", "message": start}
        yield "ping", {"type": "ping"}
        for index, block in enumerate(blocks):
            kind = block["type"]
            if kind == "text":
                empty: dict[str, Any] = {"type": "text", "text": ""}
                deltas = [{"type": "text_delta", "text": w} for w in _words(block["text"])]
            elif kind == "tool_use":
                empty = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
                arguments = json.dumps(block["input"])
                deltas = [
                    {"type": "input_json_delta", "partial_json": arguments[i : i + 10]}
                    for i in range(0, len(arguments), 10)
                ]
            else:  # thinking
                empty = {"type": "thinking", "thinking": "", "signature": ""}
                deltas = [
                    {"type": "thinking_delta", "thinking": w} for w in _words(block["thinking"])
                ]
                deltas.append({"type": "signature_delta", "signature": block["signature"]})
            yield (
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": empty},
            )
            for delta in deltas:
                yield (
                    "content_block_delta",
                    {"type": "content_block_delta", "index": index, "delta": delta},
                )
            yield "content_block_stop", {"type": "content_block_stop", "index": index}
        yield (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence},
                "usage": {**usage, "output_tokens": _output_tokens(blocks)},
            },
        )
        yield "message_stop", {"type": "message_stop"}

    def _head(self, request: dict[str, Any]) -> dict[str, Any]:
        model = str(request.get("model"))
        return {
            "id": "msg_01" + _digest(request)[:22],
            "type": "message",
            "role": "assistant",
            "model": RESPONSE_MODELS.get(model, model),
        }


def _as_chat(request: dict[str, Any]) -> dict[str, Any]:
    """The request's texts as chat messages (the system prompt first), for the script."""
    messages = [
        {"role": "system", "content": _block_text(b)} for b in _blocks(request.get("system"))
    ]
    for message in request.get("messages") or ():
        text = " ".join(_block_text(b) for b in _blocks(message.get("content")))
        messages.append({"role": message.get("role"), "content": text})
    return {"messages": messages}


def _words(text: str) -> list[str]:
    words = text.split(" ")
    return [w if i == 0 else " " + w for i, w in enumerate(words)]


def _output_tokens(blocks: list[dict[str, Any]]) -> int:
    return sum(count_tokens(_block_text(b) or str(b.get("thinking", ""))) for b in blocks)


def _tool_to_use(request: dict[str, Any]) -> dict[str, Any] | None:
    tools = [t for t in request.get("tools") or () if "input_schema" in t]
    messages = request.get("messages") or []
    choice = request.get("tool_choice") or {}
    if (
        not tools
        or choice.get("type") == "none"
        or (messages and _is_tool_result_turn(messages[-1]))
    ):
        return None
    tool = next((t for t in tools if t.get("name") == choice.get("name")), tools[0])
    last_user = next(
        (
            " ".join(_block_text(b) for b in _blocks(m.get("content")))
            for m in reversed(messages)
            if m.get("role") == "user"
        ),
        "",
    )
    schema = tool.get("input_schema") or {}
    properties = schema.get("properties") or {}
    arguments: dict[str, Any] = {}
    for name in schema.get("required") or list(properties)[:1]:
        kind = (properties.get(name) or {}).get("type")
        arguments[name] = 1 if kind in ("integer", "number") else " ".join(last_user.split()[:8])
    return {
        "type": "tool_use",
        "id": "toolu_01" + _digest(messages, tool.get("name"))[:22],
        "name": tool.get("name", ""),
        "input": arguments,
    }


_REQUEST_ID = "req_011CFakeAnthropic"


def _error_body(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}, "request_id": _REQUEST_ID}
