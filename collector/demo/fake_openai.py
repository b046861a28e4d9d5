"""A local fake of the OpenAI HTTP API: its real wire format on loopback, for tests and the demo.

::

    with FakeOpenAI() as fake:
        client = OpenAI(base_url=fake.base_url, api_key="fake", max_retries=0)
        client.chat.completions.create(model="gpt-4o-mini", messages=[...])

It speaks enough of the API for the real `openai` client to parse every answer:
`POST /v1/chat/completions` (JSON, or SSE with `stream=True`: a usage chunk only with
`stream_options.include_usage`, as the API does; tool calls when the request has
`tools`), `POST /v1/responses` (the Responses API: JSON, or with `stream=True` its
named server-sent events from `response.created` to `response.completed`; function
calls when the request has function tools; `incomplete` at `max_output_tokens`),
`POST /v1/completions` (the legacy text completions, JSON or SSE),
`POST /v1/embeddings` (float or base64 vectors) and `GET /v1/models`.
Answers are deterministic functions of the request: the reply mentions the last user
message (in JSON when `response_format` asks for a JSON object or schema), token counts come
from word counts (4 tokens per 3 words, 3 per message), the response model is the dated
snapshot of the requested one (`gpt-4o-mini` → `gpt-4o-mini-2024-07-18`). Everything
before the last message counts as a cached prompt prefix once it reaches `cache_min_tokens`
(1024 like the API; lower it to see caching).

`script` scripts the answers per prompt: an ordered mapping from a text, or a tuple of texts,
to the reply; the first entry whose texts all appear in the request's messages (system and
user alike) answers, so `{("capital of France", "name only"): "Paris", "capital of France":
"It is Paris, of course."}` answers two prompts for one question differently. Requests no
entry matches get the default answer.

A script entry whose reply is a `Failure(status)` fails the requests it matches with the
API's error for that status (429 rate limit with `retry-after: 0`, 500, 503, 401, 400), and
so does any request sent with the header `x-fake-error: STATUS`: failures under real model
names. Special model names fail on purpose too: `fail-429`, `fail-500`, `fail-midstream`
(the connection drops after a few chunks).

Standard library only: it ships with the package for `assay demo`.
"""

from __future__ import annotations

import array
import base64
import hashlib
import json
import math
import random
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from assay.collector.demo.fake_server import (
    Failure,
    FakeServer,
    Reply,
    Request,
    failure_asked,
    sse,
)

__all__ = ["FAIL_429", "FAIL_500", "FAIL_MIDSTREAM", "FakeOpenAI", "Script", "count_tokens"]

FAIL_429 = "fail-429"
FAIL_500 = "fail-500"
FAIL_MIDSTREAM = "fail-midstream"

# Snapshot each alias pointed to; the API answers with these in `model`.
RESPONSE_MODELS = {
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
    "gpt-4o": "gpt-4o-2024-08-06",
    "gpt-4.1": "gpt-4.1-2025-04-14",
    "gpt-4.1-mini": "gpt-4.1-mini-2025-04-14",
    "gpt-4.1-nano": "gpt-4.1-nano-2025-04-14",
    "gpt-4-turbo": "gpt-4-turbo-2024-04-09",
    "gpt-3.5-turbo": "gpt-3.5-turbo-0125",
    "gpt-5": "gpt-5-2025-08-07",
    "gpt-5-mini": "gpt-5-mini-2025-08-07",
    "gpt-5-nano": "gpt-5-nano-2025-08-07",
    "o3-mini": "o3-mini-2025-01-31",
    "o4-mini": "o4-mini-2025-04-16",
}
EMBEDDING_DIMENSIONS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}
_SYSTEM_FINGERPRINT = "fp_fa4e0a1ce5"
_MIDSTREAM_CHUNKS = 3

_SENTENCES = (
    "The short answer is that it depends on the constraints you care about most.",
    "A good first step is to write down the inputs and the outputs you expect.",
    "Start with the simplest version that works, then measure before optimising.",
    "Keep the interface small so that the rest of the system stays easy to change.",
    "Most problems of this kind come from unclear requirements rather than hard code.",
    "Test the edge cases early, because they are where the surprises usually hide.",
    "If the data is large, process it in batches and keep memory use bounded.",
    "Write the result down in plain words so that the next person can follow it.",
    "Prefer a boring, well understood tool over a clever one nobody knows.",
    "When in doubt, ask the people who will use it what they actually need.",
)

ReplyHook = Callable[[dict[str, Any]], str]
Script = Mapping[str | tuple[str, ...], str | Failure]


def count_tokens(text: str) -> int:
    """Tokens of a text as the fake counts them: 4 per 3 words, at least 1 for any text."""
    words = len(text.split())
    return max(1, math.ceil(words * 4 / 3)) if words else 0


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(part.get("text", "")) for part in content if isinstance(part, dict)
        ).strip()
    return ""


def _message_tokens(message: dict[str, Any]) -> int:
    tokens = 3 + count_tokens(_text_of(message.get("content")))
    for tool_call in message.get("tool_calls") or ():
        function = tool_call.get("function") or {}
        tokens += count_tokens(str(function.get("name", ""))) + count_tokens(
            str(function.get("arguments", ""))
        )
    return tokens


def _digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def scripted_reply(script: Script, request: dict[str, Any]) -> str | Failure | None:
    """The reply of the first script entry whose texts all appear in the request's messages."""
    conversation = "\n".join(_text_of(m.get("content")) for m in request.get("messages") or [])
    for key, reply in script.items():
        needles = (key,) if isinstance(key, str) else key
        if all(needle in conversation for needle in needles):
            return reply
    return None


def default_reply(request: dict[str, Any], choice: int = 0) -> str:
    """A plausible answer that mentions the last user message; the same request, the same text."""
    messages = request.get("messages") or []
    last_user = next(
        (_text_of(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), ""
    )
    if messages and messages[-1].get("role") == "tool":
        result = " ".join(_text_of(messages[-1].get("content")).split()[:12])
        opening = f'Based on the tool result ("{result}"), here is what I found.'
    else:
        topic = " ".join(last_user.split()[:12]) or "your question"
        opening = f'You asked: "{topic}".'
    rng = random.Random(_digest(messages, request.get("model"), choice))
    sentences = rng.sample(_SENTENCES, k=rng.randint(2, 4))
    return " ".join([opening, *sentences])


def json_reply(request: dict[str, Any], choice: int = 0) -> str:
    """The default answer, as JSON when the request asks for it (`response_format` of type
    `json_object`, or `json_schema`: an object with the schema's required properties)."""
    text = default_reply(request, choice)
    response_format = request.get("response_format") or {}
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind == "json_object":
        return json.dumps({"answer": text})
    if kind != "json_schema":
        return text
    schema = (response_format.get("json_schema") or {}).get("schema") or {}
    rng = random.Random(_digest(text, schema))
    return json.dumps(_instance(schema, text, rng))


def _instance(schema: dict[str, Any], text: str, rng: random.Random) -> Any:
    """A value valid under a (simple) JSON schema: enums, objects, arrays and scalars."""
    if schema.get("enum"):
        return rng.choice(schema["enum"])
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties") or {}
        names = schema.get("required") or list(properties)
        return {name: _instance(properties.get(name) or {}, text, rng) for name in names}
    if kind == "array":
        return [_instance(schema.get("items") or {}, text, rng)]
    if kind == "integer":
        return rng.randint(1, 9)
    if kind == "number":
        return round(rng.uniform(0, 1), 2)
    if kind == "boolean":
        return rng.random() < 0.3
    return text


class FakeOpenAI(FakeServer):
    """An OpenAI-compatible HTTP server on loopback, in daemon threads.

    `script` answers the requests it matches (see the module's docstring); `reply(request_json)
    -> str` chooses the other answers' text (default: `default_reply`).
    `latency` seconds pass before each answer, `chunk_latency` between stream chunks.
    `clock()` gives the `created` timestamps (fix it to make responses byte-identical).
    `mutate(body) -> body`, when given, rewrites every successful JSON body and every
    stream event before it is sent: malformed answers on purpose, for robustness tests.
    Every request body received is in `requests`.
    """

    thread_name = "fake-openai"

    def __init__(
        self,
        *,
        reply: ReplyHook | None = None,
        script: Script | None = None,
        mutate: Callable[[dict[str, Any]], Any] | None = None,
        latency: float = 0.0,
        chunk_latency: float = 0.0,
        cache_min_tokens: int = 1024,
        clock: Callable[[], float] = time.time,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self._reply_hook = reply
        self.script = dict(script or {})
        self.mutate = mutate
        self.latency = latency
        self.chunk_latency = chunk_latency
        self.cache_min_tokens = cache_min_tokens
        self.clock = clock
        super().__init__(host, port)

    def answer_text(self, request: dict[str, Any], index: int = 0) -> str:
        """The text answering a (chat-shaped) request: scripted, else `reply`, else the default."""
        scripted = scripted_reply(self.script, request) if self.script else None
        text = scripted if isinstance(scripted, str) else None
        if text is None:
            hook = self._reply_hook
            text = hook(request) if hook else json_reply(request, index)
        return text

    @property
    def base_url(self) -> str:
        """`http://HOST:PORT/v1`, the `base_url` for an OpenAI client."""
        return f"{self.address}/v1"

    def reply(self, request: Request) -> Reply:
        return _Answers(self).reply(request)

    # -- answers, as JSON-ready dicts -------------------------------------------------------

    def _usage(self, request: dict[str, Any], completion_tokens: int) -> dict[str, Any]:
        messages = request.get("messages") or []
        per_message = [_message_tokens(m) for m in messages]
        prompt_tokens = sum(per_message) + 3
        prefix = sum(per_message[:-1])
        cached = prefix if messages and prefix >= self.cache_min_tokens else 0
        return {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    def _choices(self, request: dict[str, Any]) -> list[dict[str, Any]]:
        """Per choice: text or tool call, finish reason and completion tokens."""
        n = request.get("n")
        count = n if isinstance(n, int) and n > 1 else 1
        tool_call = _tool_call(request)
        limit = request.get("max_completion_tokens") or request.get("max_tokens")
        choices = []
        for index in range(count):
            if tool_call is not None:
                function = tool_call["function"]
                tokens = count_tokens(function["name"]) + count_tokens(function["arguments"])
                choices.append(
                    {"text": None, "tool_call": tool_call, "finish": "tool_calls", "tokens": tokens}
                )
                continue
            text = self.answer_text(request, index)
            finish = "stop"
            tokens = count_tokens(text)
            if isinstance(limit, int) and tokens > limit:
                text = " ".join(text.split()[: max(1, limit * 3 // 4)])
                tokens = count_tokens(text)
                finish = "length"
            choices.append({"text": text, "tool_call": None, "finish": finish, "tokens": tokens})
        return choices

    def chat_completion(self, request: dict[str, Any]) -> dict[str, Any]:
        """The JSON body of a non-streamed chat completion."""
        choices = self._choices(request)
        body_choices = []
        for index, choice in enumerate(choices):
            message: dict[str, Any] = {
                "role": "assistant",
                "content": choice["text"],
                "refusal": None,
                "annotations": [],
            }
            if choice["tool_call"] is not None:
                message["tool_calls"] = [choice["tool_call"]]
            body_choices.append(
                {
                    "index": index,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": choice["finish"],
                }
            )
        return {
            "id": _completion_id(request),
            "object": "chat.completion",
            "created": int(self.clock()),
            "model": _response_model(request.get("model")),
            "choices": body_choices,
            "usage": self._usage(request, sum(c["tokens"] for c in choices)),
            "service_tier": "default",
            "system_fingerprint": _SYSTEM_FINGERPRINT,
        }

    def chat_chunks(self, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """The chunks of a streamed chat completion, in the order the API sends them."""
        choices = self._choices(request)
        include_usage = bool((request.get("stream_options") or {}).get("include_usage"))
        head = {
            "id": _completion_id(request),
            "object": "chat.completion.chunk",
            "created": int(self.clock()),
            "model": _response_model(request.get("model")),
            "service_tier": "default",
            "system_fingerprint": _SYSTEM_FINGERPRINT,
        }

        def chunk(index: int, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            body = {
                **head,
                "choices": [
                    {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
                ],
            }
            if include_usage:
                body["usage"] = None
            return body

        for index, choice in enumerate(choices):
            tool_call = choice["tool_call"]
            if tool_call is not None:
                function = tool_call["function"]
                first = {
                    "index": 0,
                    "id": tool_call["id"],
                    "type": "function",
                    "function": {"name": function["name"], "arguments": ""},
                }
                yield chunk(
                    index,
                    {"role": "assistant", "content": None, "tool_calls": [first], "refusal": None},
                )
                for piece in _pieces(function["arguments"], 12):
                    yield chunk(
                        index, {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}
                    )
            else:
                yield chunk(index, {"role": "assistant", "content": "", "refusal": None})
                words = choice["text"].split(" ")
                for position, word in enumerate(words):
                    yield chunk(index, {"content": word if position == 0 else " " + word})
            yield chunk(index, {}, choice["finish"])
        if include_usage:
            yield {
                **head,
                "choices": [],
                "usage": self._usage(request, sum(c["tokens"] for c in choices)),
            }

    # -- the Responses API ------------------------------------------------------------------

    def _response_output(self, request: dict[str, Any]) -> tuple[list[dict[str, Any]], str, int]:
        """The output items, the status, and the output tokens of a Responses API answer."""
        chat_view = _responses_as_chat(request)
        key = _digest(request)
        tool_call = _tool_call(chat_view)
        if tool_call is not None:
            function = tool_call["function"]
            item = {
                "type": "function_call",
                "id": "fc_" + key[:40],
                "call_id": tool_call["id"],
                "name": function["name"],
                "arguments": function["arguments"],
                "status": "completed",
            }
            tokens = count_tokens(function["name"]) + count_tokens(function["arguments"])
            return [item], "completed", tokens
        text = self.answer_text(chat_view)
        status = "completed"
        limit = request.get("max_output_tokens")
        if isinstance(limit, int) and count_tokens(text) > limit:
            text = " ".join(text.split()[: max(1, limit * 3 // 4)])
            status = "incomplete"
        message = {
            "type": "message",
            "id": "msg_" + key[:40],
            "status": status,
            "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}],
        }
        return [message], status, count_tokens(text)

    def _response_body(
        self,
        request: dict[str, Any],
        output: list[dict[str, Any]],
        status: str,
        output_tokens: int | None,
    ) -> dict[str, Any]:
        usage = None
        if output_tokens is not None:
            prompt = self._usage(_responses_as_chat(request), output_tokens)
            usage = {
                "input_tokens": prompt["prompt_tokens"],
                "input_tokens_details": {
                    "cached_tokens": prompt["prompt_tokens_details"]["cached_tokens"]
                },
                "output_tokens": output_tokens,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": prompt["prompt_tokens"] + output_tokens,
            }
        return {
            "id": "resp_" + _digest(request)[:40],
            "object": "response",
            "created_at": int(self.clock()),
            "status": status,
            "background": False,
            "error": None,
            "incomplete_details": (
                {"reason": "max_output_tokens"} if status == "incomplete" else None
            ),
            "instructions": request.get("instructions"),
            "max_output_tokens": request.get("max_output_tokens"),
            "model": _response_model(request.get("model")),
            "output": output,
            "parallel_tool_calls": True,
            "previous_response_id": request.get("previous_response_id"),
            "reasoning": {"effort": None, "summary": None},
            "service_tier": "default",
            "store": True,
            "temperature": request.get("temperature", 1.0),
            "text": {"format": {"type": "text"}},
            "tool_choice": request.get("tool_choice", "auto"),
            "tools": request.get("tools") or [],
            "top_p": request.get("top_p", 1.0),
            "truncation": "disabled",
            "usage": usage,
            "user": None,
            "metadata": {},
        }

    def response(self, request: dict[str, Any]) -> dict[str, Any]:
        """The JSON body of a non-streamed Responses API answer."""
        output, status, tokens = self._response_output(request)
        return self._response_body(request, output, status, tokens)

    def response_events(self, request: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
        """The (event name, data) pairs of a streamed Responses API answer, in the API's order."""
        output, status, tokens = self._response_output(request)
        sequence = iter(range(1_000_000))

        def event(kind: str, **data: Any) -> tuple[str, dict[str, Any]]:
            return kind, {"type": kind, "sequence_number": next(sequence), **data}

        started = self._response_body(request, [], "in_progress", None)
        yield event("response.created", response=started)
        yield event("response.in_progress", response=started)
        for index, item in enumerate(output):
            if item["type"] == "function_call":
                yield event(
                    "response.output_item.added",
                    output_index=index,
                    item={**item, "arguments": "", "status": "in_progress"},
                )
                for piece in _pieces(item["arguments"], 12):
                    yield event(
                        "response.function_call_arguments.delta",
                        item_id=item["id"],
                        output_index=index,
                        delta=piece,
                    )
                yield event(
                    "response.function_call_arguments.done",
                    item_id=item["id"],
                    output_index=index,
                    name=item["name"],
                    arguments=item["arguments"],
                )
            else:
                part = item["content"][0]
                place = {"item_id": item["id"], "output_index": index, "content_index": 0}
                yield event(
                    "response.output_item.added",
                    output_index=index,
                    item={**item, "status": "in_progress", "content": []},
                )
                yield event("response.content_part.added", **place, part={**part, "text": ""})
                words = part["text"].split(" ")
                for position, word in enumerate(words):
                    delta = word if position == 0 else " " + word
                    yield event("response.output_text.delta", **place, delta=delta, logprobs=[])
                yield event("response.output_text.done", **place, text=part["text"], logprobs=[])
                yield event("response.content_part.done", **place, part=part)
            yield event("response.output_item.done", output_index=index, item=item)
        final = "response.completed" if status == "completed" else "response.incomplete"
        yield event(final, response=self._response_body(request, output, status, tokens))

    # -- legacy text completions ------------------------------------------------------------

    def _completion_choices(self, request: dict[str, Any]) -> list[tuple[str, str, int]]:
        chat_view = {"model": request.get("model"), "messages": _prompt_messages(request)}
        n = request.get("n")
        limit = request.get("max_tokens")
        limit = limit if isinstance(limit, int) else 16  # the API's default for this endpoint
        choices = []
        for index in range(n if isinstance(n, int) and n > 1 else 1):
            text = self.answer_text(chat_view, index)
            finish = "stop"
            if count_tokens(text) > limit:
                text = " ".join(text.split()[: max(1, limit * 3 // 4)])
                finish = "length"
            choices.append((" " + text, finish, count_tokens(text)))
        return choices

    def _completion_head(self, request: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": "cmpl-" + _request_digest(request)[:29],
            "object": "text_completion",
            "created": int(self.clock()),
            "model": str(request.get("model")),
            "system_fingerprint": None,
        }

    def _completion_usage(self, request: dict[str, Any], completion_tokens: int) -> dict[str, Any]:
        prompt_tokens = sum(count_tokens(m["content"]) for m in _prompt_messages(request))
        return {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }

    def completion(self, request: dict[str, Any]) -> dict[str, Any]:
        """The JSON body of a non-streamed legacy completion."""
        choices = self._completion_choices(request)
        return {
            **self._completion_head(request),
            "choices": [
                {"text": text, "index": index, "logprobs": None, "finish_reason": finish}
                for index, (text, finish, _) in enumerate(choices)
            ],
            "usage": self._completion_usage(request, sum(c[2] for c in choices)),
        }

    def completion_chunks(self, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """The chunks of a streamed legacy completion, in the order the API sends them."""
        head = self._completion_head(request)
        choices = self._completion_choices(request)
        for index, (text, finish, _) in enumerate(choices):
            words = text.split(" ")
            for position, word in enumerate(words):
                piece = word if position == 0 else " " + word
                yield {
                    **head,
                    "choices": [
                        {"text": piece, "index": index, "logprobs": None, "finish_reason": None}
                    ],
                }
            yield {
                **head,
                "choices": [
                    {"text": "", "index": index, "logprobs": None, "finish_reason": finish}
                ],
            }
        if (request.get("stream_options") or {}).get("include_usage"):
            usage = self._completion_usage(request, sum(c[2] for c in choices))
            yield {**head, "choices": [], "usage": usage}

    def embeddings(self, request: dict[str, Any]) -> dict[str, Any]:
        """The JSON body of an embeddings response."""
        model = str(request.get("model"))
        raw = request.get("input")
        if isinstance(raw, str) or (isinstance(raw, list) and raw and isinstance(raw[0], int)):
            inputs: list[Any] = [raw]
        else:
            inputs = list(raw or [])
        dimensions = request.get("dimensions") or EMBEDDING_DIMENSIONS.get(model, 1536)
        as_base64 = request.get("encoding_format") == "base64"
        data = []
        tokens = 0
        for index, item in enumerate(inputs):
            tokens += count_tokens(item) if isinstance(item, str) else len(item)
            vector = _vector(model, item, dimensions)
            embedding: Any = (
                base64.b64encode(array.array("f", vector).tobytes()).decode()
                if as_base64
                else vector
            )
            data.append({"object": "embedding", "index": index, "embedding": embedding})
        return {
            "object": "list",
            "data": data,
            "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }


def _response_model(model: Any) -> str:
    return RESPONSE_MODELS.get(str(model), str(model))


def _request_digest(request: dict[str, Any]) -> str:
    """The digest naming an answer: of the request, but for whether usage was asked for (an
    instrumentation asking for it on the application's behalf changes nothing it sees)."""
    return _digest({k: v for k, v in request.items() if k != "stream_options"})


def _completion_id(request: dict[str, Any]) -> str:
    return "chatcmpl-" + _request_digest(request)[:29]


def _prompt_messages(request: dict[str, Any]) -> list[dict[str, Any]]:
    prompt = request.get("prompt")
    prompts = prompt if isinstance(prompt, list) else [prompt]
    return [{"role": "user", "content": str(p)} for p in prompts if isinstance(p, str)]


def _responses_as_chat(request: dict[str, Any]) -> dict[str, Any]:
    """A Responses API request seen as a chat request, for the shared reply and token logic."""
    messages: list[dict[str, Any]] = []
    if isinstance(request.get("instructions"), str):
        messages.append({"role": "system", "content": request["instructions"]})
    raw = request.get("input")
    for item in [{"role": "user", "content": raw}] if isinstance(raw, str) else raw or []:
        kind = item.get("type")
        if kind == "function_call_output":
            messages.append({"role": "tool", "content": str(item.get("output", ""))})
        elif kind == "function_call":
            function = {"name": item.get("name", ""), "arguments": item.get("arguments", "")}
            messages.append(
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {"id": item.get("call_id"), "type": "function", "function": function}
                    ],
                }
            )
        elif "role" in item:
            content = item.get("content")
            if isinstance(content, list):
                content = " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
            messages.append({"role": item["role"], "content": content})
    tools = [
        {"type": "function", "function": {k: v for k, v in t.items() if k != "type"}}
        for t in request.get("tools") or ()
        if t.get("type") == "function"
    ]
    return {"model": request.get("model"), "messages": messages, "tools": tools}


def _pieces(text: str, size: int) -> Iterator[str]:
    for start in range(0, len(text), size):
        yield text[start : start + size]


def _vector(model: str, item: Any, dimensions: int) -> list[float]:
    rng = random.Random(_digest(model, item))
    values = [rng.gauss(0.0, 1.0) for _ in range(dimensions)]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [round(v / norm, 9) for v in values]


def _tool_call(request: dict[str, Any]) -> dict[str, Any] | None:
    """The tool call the fake makes: when tools are offered and the last turn is not a result."""
    tools = [t for t in request.get("tools") or () if t.get("type") == "function"]
    messages = request.get("messages") or []
    choice = request.get("tool_choice")
    if not tools or choice == "none" or (messages and messages[-1].get("role") == "tool"):
        return None
    tool = tools[0]
    if isinstance(choice, dict):
        wanted = (choice.get("function") or {}).get("name")
        tool = next((t for t in tools if t["function"].get("name") == wanted), tool)
    function = tool["function"]
    last_user = next(
        (_text_of(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), ""
    )
    schema = function.get("parameters") or {}
    properties = schema.get("properties") or {}
    names = schema.get("required") or list(properties)[:1]
    arguments: dict[str, Any] = {}
    for name in names:
        kind = (properties.get(name) or {}).get("type")
        if kind in ("integer", "number"):
            arguments[name] = 1
        elif kind == "boolean":
            arguments[name] = True
        else:
            arguments[name] = " ".join(last_user.split()[:8])
    return {
        "id": "call_" + _digest(messages, function.get("name"))[:24],
        "type": "function",
        "function": {"name": function.get("name", ""), "arguments": json.dumps(arguments)},
    }


def _error_body(message: str, kind: str, code: str | None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def _failure_body(status: int, model: Any) -> dict[str, Any]:
    """The body the API answers a request it fails with `status`."""
    if status == 429:
        return _error_body(
            f"Rate limit reached for {model} in organization org-fake on requests per min "
            "(RPM): Limit 3, Used 3, Requested 1. Please try again in 20s.",
            "requests",
            "rate_limit_exceeded",
        )
    if status == 401:
        return _error_body(
            "Incorrect API key provided. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            "invalid_request_error",
            "invalid_api_key",
        )
    if status == 400:
        return _error_body(
            "Invalid request: the request was refused as scripted.", "invalid_request_error", None
        )
    if status == 503:
        return _error_body(
            "The engine is currently overloaded, please try again later.", "server_error", None
        )
    return _error_body(
        "The server had an error while processing your request. Sorry about that!",
        "server_error",
        None,
    )


def _request_id() -> str:
    return "req_" + hashlib.sha1(str(time.time_ns()).encode()).hexdigest()[:24]


class _Answers:
    """How FakeOpenAI answers one request: routing, errors, JSON bodies and event streams."""

    def __init__(self, fake: FakeOpenAI) -> None:
        self.fake = fake

    def reply(self, request: Request) -> Reply:
        fake = self.fake
        path = request.path.rstrip("/")
        if request.method == "GET":
            if path.endswith("/models"):
                models = [*RESPONSE_MODELS, *EMBEDDING_DIMENSIONS]
                data = [
                    {"id": m, "object": "model", "created": 0, "owned_by": "openai"} for m in models
                ]
                return self.json({"object": "list", "data": data})
            return self.not_found(request)
        body = request.body
        if not isinstance(body, dict):
            detail = "the body must be a JSON object" if body is not None else "no body"
            error = _error_body(f"Invalid JSON body: {detail}", "invalid_request_error", None)
            return self.json(error, 400)
        if fake.latency:
            time.sleep(fake.latency)
        model = body.get("model")
        drop = model == FAIL_MIDSTREAM
        failure = self.failure(request, path, body)
        if failure is not None:
            headers = {"retry-after": "0"} if failure.status == 429 else {}
            return self.json(_failure_body(failure.status, model), failure.status, headers)
        # Matched by suffix: Azure-style paths (/openai/deployments/NAME/...) work as well.
        if path.endswith("/chat/completions"):
            if body.get("stream"):
                return self.stream(fake.chat_chunks(body), drop)
            return self.json(fake.chat_completion(body), truncate=drop)
        if path.endswith("/responses"):
            if body.get("stream"):
                return self.stream(fake.response_events(body), drop, done=False)
            return self.json(fake.response(body))
        if path.endswith("/completions"):
            if body.get("stream"):
                return self.stream(fake.completion_chunks(body), drop)
            return self.json(fake.completion(body))
        if path.endswith("/embeddings"):
            return self.json(fake.embeddings(body))
        return self.not_found(request)

    def failure(self, request: Request, path: str, body: dict[str, Any]) -> Failure | None:
        """The failure asked for: by the header, a script entry, or a `fail-*` model name."""
        model = body.get("model")
        if model == FAIL_429:
            return Failure(429)
        if model == FAIL_500:
            return Failure(500)
        asked = failure_asked(request)
        if asked is not None or not self.fake.script:
            return asked
        if path.endswith("/responses"):
            chat_view = _responses_as_chat(body)
        elif path.endswith("/chat/completions"):
            chat_view = body
        else:
            chat_view = {"messages": _prompt_messages(body)}
        scripted = scripted_reply(self.fake.script, chat_view)
        return scripted if isinstance(scripted, Failure) else None

    def json(
        self,
        body: dict[str, Any],
        status: int = 200,
        headers: dict[str, str] | None = None,
        truncate: bool = False,
    ) -> Reply:
        mutate = self.fake.mutate
        if mutate is not None and status == 200:
            body = mutate(body)
        headers = {"x-request-id": _request_id(), "openai-processing-ms": "1", **(headers or {})}
        return Reply(status, body, headers=headers, truncate=truncate)

    def not_found(self, request: Request) -> Reply:
        error = _error_body(
            f"Invalid URL ({request.method} {request.path})", "invalid_request_error", None
        )
        return self.json(error, 404)

    def stream(self, chunks: Iterator[Any], drop: bool, done: bool = True) -> Reply:
        """Server-sent events: chunks (`data:` only, then `[DONE]`, as chat completions do)
        or (event name, data) pairs (`event:` and `data:`, as the Responses API does)."""
        mutate = self.fake.mutate

        def events() -> Iterator[bytes]:
            for chunk in chunks:
                if isinstance(chunk, tuple):
                    name, data = chunk
                    yield sse(mutate(data) if mutate is not None else data, name)
                else:
                    yield sse(mutate(chunk) if mutate is not None else chunk)
            if done:
                yield b"data: [DONE]\n\n"

        return Reply(
            stream=events(),
            content_type="text/event-stream; charset=utf-8",
            headers={"x-request-id": _request_id()},
            delay=self.fake.chunk_latency,
            drop_after=_MIDSTREAM_CHUNKS if drop else None,
        )
