"""The OpenAI Responses API in the GenAI conventions: request, response and stream attributes.

Items of `input` and `output` (messages, function calls and their outputs, reasoning,
built-in tool calls) become message parts. A Response has no finish reason; it is
derived from its status: `stop`, `tool_calls` (as chat completions say it) when the
model asked for function calls, the `incomplete_details.reason` (`max_output_tokens`,
`content_filter`) when incomplete, `error` when failed. A failure the API reports in band
(a Response with `status: failed`, a stream's `error` event), which the client returns
rather than raises, ends the span as an error named by the API's error code.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from assay.instrumentation import semconv
from assay.instrumentation._spans import Attributes, LLMCall, report_internal_error, to_json
from assay.instrumentation._streams import ResponseState
from assay.instrumentation.providers import _messages as msg
from assay.instrumentation.providers._call import response_identity
from assay.instrumentation.providers._request import Parameters

PARAMETERS = Parameters(
    {"temperature": semconv.REQUEST_TEMPERATURE, "top_p": semconv.REQUEST_TOP_P},
    {"max_output_tokens": semconv.REQUEST_MAX_TOKENS},
)
_FINAL_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})
_PARTIAL_EVENTS = frozenset({"response.created", "response.in_progress", "response.queued"})
_CLIENT_TOOL_CALLS = frozenset({"function_call", "custom_tool_call"})


def _content_parts(content: Any) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "content": content}]
    if not isinstance(content, (list, tuple)):
        return [{"type": "text", "content": str(content)}]
    parts: list[dict[str, Any]] = []
    for part in content:
        kind = msg.field(part, "type")
        if kind in ("input_text", "output_text", "text"):
            parts.append({"type": "text", "content": msg.field(part, "text")})
        elif kind == "refusal":
            parts.append({"type": "refusal", "content": msg.field(part, "refusal")})
        elif kind == "input_image":
            url = msg.field(part, "image_url")
            if url:
                parts.append(msg.image_url_part(url))
            else:
                parts.append(
                    {"type": "file", "modality": "image", "file_id": msg.field(part, "file_id")}
                )
        elif kind == "input_file":
            parts.append(
                {
                    "type": "file",
                    "file_id": msg.field(part, "file_id"),
                    "name": msg.field(part, "filename"),
                }
            )
        elif kind == "input_audio":
            parts.append({"type": "blob", "modality": "audio"})
        else:
            parts.append({"type": str(kind)})
    return parts


def _item(item: Any) -> tuple[str | None, list[dict[str, Any]]]:
    """One input or output item as (role, parts)."""
    if isinstance(item, str):
        return "user", [{"type": "text", "content": item}]
    kind = msg.field(item, "type")
    if kind in _CLIENT_TOOL_CALLS:  # a custom tool takes free-form input, not JSON arguments
        arguments = msg.field(item, "arguments" if kind == "function_call" else "input")
        return "assistant", [
            msg.tool_call_part(msg.field(item, "call_id"), msg.field(item, "name"), arguments)
        ]
    if kind in ("function_call_output", "custom_tool_call_output"):
        return "tool", [
            {
                "type": "tool_call_response",
                "id": msg.field(item, "call_id"),
                "response": msg.field(item, "output"),
            }
        ]
    if kind == "reasoning":
        summary = " ".join(
            str(msg.field(s, "text") or "") for s in msg.field(item, "summary") or ()
        )
        return "assistant", [{"type": "reasoning", "content": summary}]
    role = msg.field(item, "role")
    if role is not None:
        return role, _content_parts(msg.field(item, "content"))
    if isinstance(kind, str) and kind.endswith("_call"):  # a built-in tool the API ran itself
        return "assistant", [
            {
                "type": "server_tool_call",
                "id": msg.field(item, "id"),
                "name": kind.removesuffix("_call"),
                "server_tool_call": {"type": kind},
            }
        ]
    return None, [{"type": str(kind)}]


def input_messages(input_: Any) -> list[dict[str, Any]] | None:
    if isinstance(input_, str):
        return [{"role": "user", "parts": [{"type": "text", "content": input_}]}]
    # Only a list or tuple is read: iterating a generator would consume the user's request.
    if not isinstance(input_, (list, tuple)):
        return None
    messages = []
    for item in input_:
        role, parts = _item(item)
        messages.append({"role": role, "parts": parts})
    return messages


def request_content(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The content of a Responses request, by attribute name."""
    instructions = kwargs.get("instructions")
    tools = kwargs.get("tools")
    return {
        semconv.SYSTEM_INSTRUCTIONS: [{"type": "text", "content": instructions}]
        if isinstance(instructions, str)
        else None,
        semconv.INPUT_MESSAGES: input_messages(kwargs.get("input")),
        semconv.TOOL_DEFINITIONS: [_tool_definition(t) for t in tools]
        if isinstance(tools, (list, tuple))
        else None,
    }


def _tool_definition(tool: Any) -> Any:
    if msg.field(tool, "type") != "function":
        return {"type": msg.field(tool, "type")}  # a built-in tool: its kind says what it is
    definition = {"type": "function", "name": msg.field(tool, "name")}
    description = msg.field(tool, "description")
    if description:
        definition["description"] = description
    parameters = msg.field(tool, "parameters")
    if parameters is not None:
        definition["parameters"] = parameters
    return definition


def finish_reason(response: Any) -> str | None:
    status = getattr(response, "status", None)
    if status == "completed":
        output = getattr(response, "output", None) or ()
        asked = any(getattr(item, "type", None) in _CLIENT_TOOL_CALLS for item in output)
        return "tool_calls" if asked else "stop"
    if status == "incomplete":
        reason = getattr(getattr(response, "incomplete_details", None), "reason", None)
        return reason if isinstance(reason, str) else "incomplete"
    if status == "failed":
        return "error"
    return status if isinstance(status, str) else None


def note_failure(call: LLMCall, error: Any) -> None:
    """A failure the API answered (a `ResponseError` or an `error` event): the call's error."""
    code = getattr(error, "code", None)
    message = getattr(error, "message", None)
    call.answered_with_error(
        code if isinstance(code, str) and code else "response_failed",
        message if isinstance(message, str) else "",
    )


def response_attributes(
    call: LLMCall, response: Any, request_model: str | None, capture: bool
) -> Attributes:
    attributes: Attributes = {}
    model = response_identity(response, attributes)
    if getattr(response, "status", None) == "failed":
        note_failure(call, getattr(response, "error", None))
    reason = finish_reason(response)
    if reason:
        attributes[semconv.RESPONSE_FINISH_REASONS] = (reason,)
    if capture:
        try:
            parts = [
                part for item in getattr(response, "output", None) or () for part in _item(item)[1]
            ]
            attributes[semconv.OUTPUT_MESSAGES] = to_json([msg.output_message(parts, reason)])
        except Exception:
            report_internal_error("converting openai responses output")
    usage = getattr(response, "usage", None)
    if usage is None:
        call.add_usage(attributes, model or request_model, None, None)
        return attributes
    input_details = getattr(usage, "input_tokens_details", None)
    output_details = getattr(usage, "output_tokens_details", None)
    call.add_usage(
        attributes,
        model or request_model,
        msg.int_or_none(getattr(usage, "input_tokens", None)),
        msg.int_or_none(getattr(usage, "output_tokens", None)),
        cached_input_tokens=msg.int_or_none(getattr(input_details, "cached_tokens", None)),
        cache_creation_input_tokens=msg.int_or_none(
            getattr(input_details, "cache_write_tokens", None)
        ),
        reasoning_output_tokens=msg.int_or_none(getattr(output_details, "reasoning_tokens", None)),
    )
    return attributes


class ResponsesStreamAccumulator(ResponseState):
    """What a Responses API stream's span needs. The final event carries the whole Response;
    a stream left early is described from the items and deltas that came before it."""

    __slots__ = ("_deltas", "_done", "_error", "_final", "_items", "_response")

    def __init__(self, request_model: str | None, capture: bool) -> None:
        super().__init__(request_model, capture)
        self._response: Any = None
        self._final = False
        self._items: dict[int, Any] = {}
        self._done: set[int] = set()
        self._deltas: dict[int, list[str]] = {}
        self._error: Any = None  # the `error` event that ended the stream

    def add(self, event: Any) -> None:
        kind = event.type
        if kind in ("response.output_text.delta", "response.function_call_arguments.delta"):
            if self._capture:
                self._deltas.setdefault(event.output_index, []).append(event.delta)
        elif kind in _FINAL_EVENTS:
            self._response = event.response
            self._final = True
        elif kind in _PARTIAL_EVENTS:
            self._response = event.response
        elif kind == "response.output_item.added":
            if self._capture:
                self._items.setdefault(event.output_index, event.item)
        elif kind == "response.output_item.done":
            if self._capture:
                self._items[event.output_index] = event.item
                self._done.add(event.output_index)
        elif kind == "error":
            self._error = event

    def attributes(self, call: LLMCall) -> Attributes:
        if self._error is not None:
            note_failure(call, self._error)
        if self._final:
            return response_attributes(call, self._response, self._request_model, self._capture)
        attributes: Attributes = {}
        response = self._response
        model = getattr(response, "model", None)
        if isinstance(getattr(response, "id", None), str):
            attributes[semconv.RESPONSE_ID] = response.id
        if isinstance(model, str) and model:
            attributes[semconv.RESPONSE_MODEL] = model
        else:
            model = None
        if self._capture:
            try:
                attributes[semconv.OUTPUT_MESSAGES] = to_json(
                    [msg.output_message(self._parts(), None)]
                )
            except Exception:
                report_internal_error("converting openai responses streamed output")
        call.add_usage(attributes, model or self._request_model, None, None)
        return attributes

    def _parts(self) -> list[dict[str, Any]]:
        parts: list[dict[str, Any]] = []
        for index in sorted(self._items):
            item = self._items[index]
            if index in self._done:
                parts.extend(_item(item)[1])
                continue
            so_far = "".join(self._deltas.get(index, ()))
            if getattr(item, "type", None) == "function_call":
                parts.append(
                    {
                        "type": "tool_call",
                        "id": getattr(item, "call_id", None),
                        "name": getattr(item, "name", None),
                        "arguments": so_far,
                    }
                )
            elif so_far:
                parts.append({"type": "text", "content": so_far})
        return parts
