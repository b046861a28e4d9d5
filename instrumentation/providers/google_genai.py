"""Google GenAI client instrumentation (`google-genai`): generate_content, plain and streamed.

`GoogleGenAIInstrumentor` patches the methods of `Models` and `AsyncModels` that send one
HTTP request each (`_generate_content`, `_generate_content_stream`), so that the
requests that `generate_content` makes on its own (automatic function calling, automatic
continuation) each become one span with their own tokens and cost. Clients without those
methods get the public `generate_content(_stream)` patched instead. `client.chats` goes
through the same methods. The provider is `gcp.vertex_ai` for a Vertex AI client,
`gcp.gemini` for the Gemini Developer API. `google.genai` is patched when the
application imports it.

Finish reasons are Gemini's own, in lower case (`stop`, `max_tokens`, `safety`). Output
tokens are candidate plus thinking tokens, as Google bills them; input tokens include
cached and tool-use prompt tokens.
"""

from __future__ import annotations

from typing import Any

from assay.instrumentation import semconv
from assay.instrumentation._spans import Attributes, LLMCall, to_json
from assay.instrumentation.providers._common import request_model
from assay.instrumentation.providers._wrapping import (
    CallStart,
    ClientInstrumentor,
    ClientWrappers,
    Target,
    add_stop_sequences,
    append_part,
    field,
    number_attributes,
    output_json,
    output_message,
    response_basics,
    server_attributes,
    text_part,
    tool_call_part,
    tool_response_part,
)
from assay.instrumentation.providers.package import GOOGLE_GENAI_INSTRUMENTS

_MODELS = "google.genai.models"
_TARGETS = (
    Target(_MODELS, "Models", ("_generate_content", "generate_content"), "plain", False),
    Target(
        _MODELS, "Models", ("_generate_content_stream", "generate_content_stream"), "stream", False
    ),
    Target(_MODELS, "AsyncModels", ("_generate_content", "generate_content"), "plain", True),
    Target(
        _MODELS,
        "AsyncModels",
        ("_generate_content_stream", "generate_content_stream"),
        "stream",
        True,
    ),
)

_CONFIG_NUMBERS = {
    "temperature": semconv.REQUEST_TEMPERATURE,
    "top_p": semconv.REQUEST_TOP_P,
    "top_k": semconv.REQUEST_TOP_K,
    "presence_penalty": semconv.REQUEST_PRESENCE_PENALTY,
    "frequency_penalty": semconv.REQUEST_FREQUENCY_PENALTY,
}
_CONFIG_INTEGERS = {
    "max_output_tokens": semconv.REQUEST_MAX_TOKENS,
    "seed": semconv.REQUEST_SEED,
}


# --- contents in the GenAI JSON shape ----------------------------------------------------------


def _part(part: Any) -> dict[str, Any]:
    if isinstance(part, str):
        return text_part(part)
    text = field(part, "text")
    if text is not None:
        return {"type": "reasoning", "content": text} if field(part, "thought") else text_part(text)
    call = field(part, "function_call")
    if call is not None:
        return tool_call_part(field(call, "id"), field(call, "name"), field(call, "args"))
    response = field(part, "function_response")
    if response is not None:
        call_id = field(response, "id") or field(response, "name")
        return tool_response_part(call_id, field(response, "response"))
    blob = field(part, "inline_data")
    if blob is not None:
        # Inline bytes can be megabytes: keep their type, not their content.
        return {"type": "blob", "mime_type": field(blob, "mime_type")}
    file = field(part, "file_data")
    if file is not None:
        return {
            "type": "uri",
            "uri": field(file, "file_uri"),
            "mime_type": field(file, "mime_type"),
        }
    for kind in ("executable_code", "code_execution_result", "tool_call", "tool_response"):
        if field(part, kind) is not None:
            return {"type": kind}
    return {"type": "unknown"}


def _is_content(item: Any) -> bool:
    return field(item, "parts") is not None or field(item, "role") is not None


def _message(content: Any, default_role: str) -> dict[str, Any]:
    parts = field(content, "parts") or ()
    return {"role": field(content, "role") or default_role, "parts": [_part(p) for p in parts]}


def _input_messages(contents: Any) -> list[dict[str, Any]] | None:
    """The request's contents as messages; loose parts form one user message, as the SDK does."""
    if isinstance(contents, (str, dict)) or not isinstance(contents, (list, tuple)):
        contents = [contents]
    messages: list[dict[str, Any]] = []
    loose: list[dict[str, Any]] = []
    for item in contents:
        if item is None:
            continue
        if _is_content(item):
            if loose:
                messages.append({"role": "user", "parts": loose})
                loose = []
            messages.append(_message(item, "user"))
        else:
            loose.append(_part(item))
    if loose:
        messages.append({"role": "user", "parts": loose})
    return messages


def _system_instructions(instruction: Any) -> list[dict[str, Any]] | None:
    if instruction is None:
        return None
    if isinstance(instruction, str):
        return [text_part(instruction)]
    if _is_content(instruction):
        return [_part(p) for p in field(instruction, "parts") or ()]
    if isinstance(instruction, (list, tuple)):
        return [_part(p) for p in instruction]
    return [_part(instruction)]


def _tool_definitions(tools: Any) -> list[dict[str, Any]] | None:
    if not isinstance(tools, (list, tuple)):
        return None
    definitions: list[dict[str, Any]] = []
    for tool in tools:
        if callable(tool) and not isinstance(tool, dict):  # a Python function: the SDK declares it
            definitions.append({"type": "function", "name": getattr(tool, "__name__", str(tool))})
            continue
        declarations = field(tool, "function_declarations")
        if declarations:
            for declaration in declarations:
                definition: dict[str, Any] = {
                    "type": "function",
                    "name": field(declaration, "name"),
                }
                description = field(declaration, "description")
                if description:
                    definition["description"] = description
                parameters = field(declaration, "parameters_json_schema") or field(
                    declaration, "parameters"
                )
                if parameters is not None:
                    definition["parameters"] = parameters
                definitions.append(definition)
            continue
        # Built-in tools (google_search, code_execution, url_context, ...): their kind.
        names = tool.keys() if isinstance(tool, dict) else getattr(tool, "model_fields_set", ())
        definitions.extend({"type": str(name)} for name in names if field(tool, name) is not None)
    return definitions


def _finish_reason(reason: Any) -> str | None:
    if reason is None:
        return None
    value = getattr(reason, "value", reason)
    return str(value).lower() if value else None


# --- responses ---------------------------------------------------------------------------------


def _add_usage(call: LLMCall, attributes: Attributes, model: str | None, usage: Any) -> None:
    if usage is None:
        call.add_usage(attributes, model, None, None)
        return
    prompt = field(usage, "prompt_token_count")
    tool_prompt = field(usage, "tool_use_prompt_token_count")
    candidates = field(usage, "candidates_token_count")
    thoughts = field(usage, "thoughts_token_count")
    input_tokens = (
        None if prompt is None and tool_prompt is None else (prompt or 0) + (tool_prompt or 0)
    )
    output_tokens = (
        None if candidates is None and thoughts is None else (candidates or 0) + (thoughts or 0)
    )
    call.add_usage(
        attributes,
        model,
        input_tokens,
        output_tokens,
        cached_input_tokens=field(usage, "cached_content_token_count"),
        reasoning_output_tokens=thoughts,
    )


def _response_attributes(
    call: LLMCall, response: Any, request_model: str | None, capture: bool
) -> Attributes:
    attributes: Attributes = {}
    model = getattr(response, "model_version", None)
    candidates = getattr(response, "candidates", None) or ()
    reasons = tuple(
        reason for c in candidates if (reason := _finish_reason(c.finish_reason)) is not None
    )
    response_basics(attributes, getattr(response, "response_id", None), model, reasons)
    if capture:

        def output() -> list[dict[str, Any]]:
            return [
                output_message(
                    (c.content.role if c.content else None) or "model",
                    [_part(p) for p in (c.content.parts if c.content else None) or ()],
                    _finish_reason(c.finish_reason),
                )
                for c in candidates
            ]

        output_json(attributes, output, "google-genai")
    _add_usage(call, attributes, model or request_model, getattr(response, "usage_metadata", None))
    return attributes


class _CandidateState:
    __slots__ = ("finish_reason", "parts", "role")

    def __init__(self) -> None:
        self.role: str | None = None
        self.parts: list[dict[str, Any]] = []
        self.finish_reason: str | None = None


class _StreamAccumulator:
    """Each streamed chunk is a whole GenerateContentResponse: text arrives piece by piece,
    function calls whole, and usage (cumulative) rides on every chunk."""

    __slots__ = ("_candidates", "_capture", "_model", "_request_model", "_response_id", "_usage")

    def __init__(self, request_model: str | None, capture: bool) -> None:
        self._request_model = request_model
        self._capture = capture
        self._response_id: str | None = None
        self._model: str | None = None
        self._usage: Any = None
        self._candidates: dict[int, _CandidateState] = {}

    def add(self, chunk: Any) -> None:
        if self._response_id is None and chunk.response_id:
            self._response_id = chunk.response_id
        if self._model is None and chunk.model_version:
            self._model = chunk.model_version
        if chunk.usage_metadata is not None:
            self._usage = chunk.usage_metadata
        for position, candidate in enumerate(chunk.candidates or ()):
            index = candidate.index if candidate.index is not None else position
            state = self._candidates.get(index)
            if state is None:
                state = self._candidates[index] = _CandidateState()
            if candidate.finish_reason is not None:
                state.finish_reason = _finish_reason(candidate.finish_reason)
            if not self._capture or candidate.content is None:
                continue
            state.role = candidate.content.role or state.role
            for part in candidate.content.parts or ():
                append_part(state.parts, _part(part))

    def attributes(self, call: LLMCall) -> Attributes:
        attributes: Attributes = {}
        states = [self._candidates[index] for index in sorted(self._candidates)]
        reasons = tuple(state.finish_reason for state in states if state.finish_reason)
        response_basics(attributes, self._response_id, self._model, reasons)
        if self._capture:
            attributes[semconv.OUTPUT_MESSAGES] = to_json(
                [
                    output_message(state.role or "model", state.parts, state.finish_reason)
                    for state in states
                ]
            )
        _add_usage(call, attributes, self._model or self._request_model, self._usage)
        return attributes


# --- the wrappers ------------------------------------------------------------------------------


class _GoogleGenAIWrappers(ClientWrappers):
    library = "google-genai"

    def describe(self, kind: str, instance: Any, args: Any, kwargs: Any) -> CallStart:
        api_client = getattr(instance, "_api_client", None)
        provider = (
            semconv.PROVIDER_GCP_VERTEX_AI
            if getattr(api_client, "vertexai", False)
            else semconv.PROVIDER_GCP_GEMINI
        )
        model = request_model(kwargs)
        operation = semconv.OP_GENERATE_CONTENT
        attributes = self.opening(operation, provider, model, kind == "stream")
        server_attributes(
            getattr(getattr(api_client, "_http_options", None), "base_url", None), attributes
        )
        config = kwargs.get("config")
        if config is not None:
            number_attributes(config, _CONFIG_NUMBERS, attributes)
            number_attributes(config, _CONFIG_INTEGERS, attributes, integer=True)
            candidates = field(config, "candidate_count")
            if type(candidates) is int and candidates != 1:
                attributes[semconv.REQUEST_CHOICE_COUNT] = candidates
            add_stop_sequences(attributes, field(config, "stop_sequences"))
        self.add_content(
            attributes,
            lambda: {
                semconv.INPUT_MESSAGES: _input_messages(kwargs.get("contents")),
                semconv.SYSTEM_INSTRUCTIONS: _system_instructions(
                    field(config, "system_instruction")
                ),
                semconv.TOOL_DEFINITIONS: _tool_definitions(field(config, "tools")),
            },
        )
        return CallStart(operation, provider, model, attributes)

    def accumulator(self, kind: str, args: Any, kwargs: Any) -> _StreamAccumulator:
        return _StreamAccumulator(request_model(kwargs), self.capture_content)

    def response_attributes(
        self, kind: str, call: LLMCall, response: Any, args: Any, kwargs: Any
    ) -> Attributes:
        return _response_attributes(call, response, request_model(kwargs), self.capture_content)


class GoogleGenAIInstrumentor(ClientInstrumentor):
    """Spans for the `google-genai` client's `models.generate_content(_stream)`, sync and async."""

    library = "google.genai"
    targets = _TARGETS
    instruments = GOOGLE_GENAI_INSTRUMENTS

    wrappers = _GoogleGenAIWrappers
