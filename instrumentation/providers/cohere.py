"""Cohere client instrumentation (`cohere`): the v2 chat API, sync and async, streamed.

`CohereInstrumentor` patches `V2Client.chat` / `chat_stream` and `AsyncV2Client.chat` /
`chat_stream`, which serve `ClientV2`, `AsyncClientV2` and `Client().v2` alike. `cohere`
is patched when the application imports it.

Tokens are Cohere's billed units (what the price applies to); finish reasons are Cohere's
own, in lower case (`complete`, `max_tokens`, `tool_call`). Responses carry no model
name: the request's model is priced.
"""

from __future__ import annotations

from typing import Any

from assay.instrumentation import semconv
from assay.instrumentation._spans import Attributes, LLMCall, report_internal_error, to_json
from assay.instrumentation._streams import ResponseState
from assay.instrumentation.providers import _chat_chunks as chat
from assay.instrumentation.providers import _messages as msg
from assay.instrumentation.providers._call import response_basics
from assay.instrumentation.providers._instrumentor import ClientInstrumentor, Target
from assay.instrumentation.providers._request import Parameters

# chat_stream is a generator function in both clients (async: an async generator function,
# called without await), so its wrapper is a plain function either way.
_TARGETS = tuple(
    Target(
        "cohere.v2.client", prefix + "V2Client", (method,), kind, prefix == "Async" and not stream
    )
    for prefix in ("", "Async")
    for method, kind, stream in (("chat", "chat", False), ("chat_stream", "stream", True))
)


def _finish_reason(reason: Any) -> str | None:
    return str(reason).lower() if reason else None


def _count(value: Any) -> int | None:
    # Cohere's counts are JSON numbers the client types as float.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return int(value)


def _add_usage(call: LLMCall, attributes: Attributes, model: str | None, usage: Any) -> None:
    # Billed units are what the price applies to; `tokens` only when a response lacks them.
    counts = (
        None if usage is None else msg.field(usage, "billed_units") or msg.field(usage, "tokens")
    )
    if counts is None:
        call.add_usage(attributes, model, None, None)
        return
    call.add_usage(
        attributes,
        model,
        _count(msg.field(counts, "input_tokens")),
        _count(msg.field(counts, "output_tokens")),
        cached_input_tokens=_count(msg.field(usage, "cached_tokens")),
    )


def _response_attributes(
    call: LLMCall, response: Any, request_model: str | None, capture: bool
) -> Attributes:
    attributes: Attributes = {}
    reason = _finish_reason(getattr(response, "finish_reason", None))
    response_basics(attributes, getattr(response, "id", None), None, (reason,) if reason else None)
    if capture:
        try:
            output = msg.output_message(chat.message_parts(response.message), reason)
            attributes[semconv.OUTPUT_MESSAGES] = to_json([output])
        except Exception:
            report_internal_error("converting cohere output messages")
    _add_usage(call, attributes, request_model, getattr(response, "usage", None))
    return attributes


class _StreamAccumulator(ResponseState):
    """Cohere streams typed events: message-start, content-*, tool-plan-delta, tool-call-*,
    citation-*, message-end (finish reason and usage). Responses name no model."""

    __slots__ = ("_finish_reason", "_plan", "_text", "_tool_calls", "_usage")

    def __init__(self, request_model: str | None, capture: bool) -> None:
        super().__init__(request_model, capture)
        self._finish_reason: str | None = None
        self._usage: Any = None
        self._text: dict[int, list[str]] = {}
        self._plan: list[str] = []
        self._tool_calls: dict[int, dict[str, Any]] = {}

    def add(self, event: Any) -> None:
        kind = event.type
        if kind == "message-start":
            self._response_id = event.id or self._response_id
        elif kind == "message-end":
            self._response_id = self._response_id or event.id
            delta = event.delta
            if delta is not None:
                self._finish_reason = _finish_reason(delta.finish_reason)
                self._usage = delta.usage
        elif not self._capture:
            return
        elif kind in ("content-start", "content-delta"):
            content = event.delta.message.content if event.delta and event.delta.message else None
            text = msg.field(content, "text")
            if text:
                self._text.setdefault(event.index or 0, []).append(text)
        elif kind == "tool-plan-delta":
            plan = event.delta.message.tool_plan if event.delta and event.delta.message else None
            if plan:
                self._plan.append(plan)
        elif kind in ("tool-call-start", "tool-call-delta"):
            tool_call = (
                event.delta.message.tool_calls if event.delta and event.delta.message else None
            )
            if tool_call is None:
                return
            index = event.index or 0
            entry = self._tool_calls.get(index)
            if entry is None:
                entry = self._tool_calls[index] = msg.tool_call_part(None, None, "")
            entry["id"] = msg.field(tool_call, "id") or entry["id"]
            function = msg.field(tool_call, "function")
            entry["name"] = msg.field(function, "name") or entry["name"]
            arguments = msg.field(function, "arguments")
            if arguments:
                entry["arguments"] += arguments

    def attributes(self, call: LLMCall) -> Attributes:
        attributes: Attributes = {}
        reason = self._finish_reason
        response_basics(attributes, self._response_id, None, (reason,) if reason else None)
        if self._capture:
            parts: list[msg.Part] = []
            if self._plan:
                parts.append(msg.reasoning_part("".join(self._plan)))
            parts.extend(msg.text_part("".join(self._text[i])) for i in sorted(self._text))
            parts.extend(self._tool_calls[i] for i in sorted(self._tool_calls))
            attributes[semconv.OUTPUT_MESSAGES] = to_json(
                [msg.output_message(parts, self._finish_reason)]
            )
        _add_usage(call, attributes, self._request_model, self._usage)
        return attributes


# --- the wrappers ------------------------------------------------------------------------------


class CohereWrappers(chat.ChatWrappers):
    """Spans for the cohere client's v2 chat calls."""

    library = "cohere"
    targets = _TARGETS
    provider = semconv.PROVIDER_COHERE
    response_reader = staticmethod(_response_attributes)
    stream_reader = _StreamAccumulator
    # Cohere's names for top-p and top-k are `p` and `k`.
    parameters = Parameters(
        {**chat.CHAT_NUMBERS, "p": semconv.REQUEST_TOP_P},
        {
            "max_tokens": semconv.REQUEST_MAX_TOKENS,
            "seed": semconv.REQUEST_SEED,
            "k": semconv.REQUEST_TOP_K,
        },
        stop=("stop_sequences",),
    )

    def server_url(self, instance: Any, kwargs: Any) -> Any:
        wrapper = getattr(getattr(instance, "_raw_client", None), "_client_wrapper", None)
        get_base_url = getattr(wrapper, "get_base_url", None)
        return get_base_url() if callable(get_base_url) else None


class CohereInstrumentor(ClientInstrumentor):
    """Spans for the `cohere` client's v2 chat, sync and async, plain and streamed."""

    wrappers = CohereWrappers
