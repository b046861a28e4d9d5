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
from assay.instrumentation._spans import Attributes, LLMCall, report_internal_error, to_json
from assay.instrumentation._streams import ResponseState
from assay.instrumentation.providers import _chat_chunks as chat
from assay.instrumentation.providers import _messages as msg
from assay.instrumentation.providers._call import CallStart, CallWrappers, opening, response_basics
from assay.instrumentation.providers._instrumentor import ClientInstrumentor, Target
from assay.instrumentation.providers._request import Parameters, request_model, server_attributes

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

# In the request's `config` (a GenerateContentConfig or a dict).
_PARAMETERS = Parameters(
    {**chat.CHAT_NUMBERS, "top_k": semconv.REQUEST_TOP_K},
    {"max_output_tokens": semconv.REQUEST_MAX_TOKENS, "seed": semconv.REQUEST_SEED},
    stop=("stop_sequences",),
    choices=("candidate_count",),
)


# --- contents in the GenAI JSON shape ----------------------------------------------------------


def _part(part: Any) -> msg.Part:
    if isinstance(part, str):
        return msg.text_part(part)
    text = msg.field(part, "text")
    if text is not None:
        return msg.reasoning_part(text) if msg.field(part, "thought") else msg.text_part(text)
    call = msg.field(part, "function_call")
    if call is not None:
        return msg.tool_call_part(
            msg.field(call, "id"), msg.field(call, "name"), msg.field(call, "args")
        )
    response = msg.field(part, "function_response")
    if response is not None:
        call_id = msg.field(response, "id") or msg.field(response, "name")
        return msg.tool_response_part(call_id, msg.field(response, "response"))
    blob = msg.field(part, "inline_data")
    if blob is not None:
        return msg.blob_part(None, msg.field(blob, "mime_type"))
    file = msg.field(part, "file_data")
    if file is not None:
        return {
            "type": "uri",
            "uri": msg.field(file, "file_uri"),
            "mime_type": msg.field(file, "mime_type"),
        }
    code = msg.field(part, "executable_code")
    if code is not None:  # code the model wrote for the code-execution tool
        language = msg.field(code, "language")
        return {
            "type": "executable_code",
            "language": getattr(language, "value", language),
            "code": msg.field(code, "code"),
        }
    result = msg.field(part, "code_execution_result")
    if result is not None:
        outcome = msg.field(result, "outcome")
        return {
            "type": "code_execution_result",
            "outcome": getattr(outcome, "value", outcome),
            "output": msg.field(result, "output"),
        }
    for kind in ("tool_call", "tool_response"):
        if msg.field(part, kind) is not None:
            return {"type": kind}
    return {"type": "unknown"}


def _output_parts(parts: Any) -> list[msg.Part]:
    """The answer's parts; an empty text part (Gemini 3 ends a turn with one carrying only a
    thought signature) is no part of the reply."""
    converted: list[msg.Part] = []
    for part in parts or ():
        converted_part = _part(part)
        if converted_part["type"] in ("text", "reasoning") and not converted_part["content"]:
            continue
        msg.append_part(converted, converted_part)
    return converted


def _is_content(item: Any) -> bool:
    return msg.field(item, "parts") is not None or msg.field(item, "role") is not None


def _message(content: Any, default_role: str) -> msg.Part:
    parts = msg.field(content, "parts") or ()
    return {"role": msg.field(content, "role") or default_role, "parts": [_part(p) for p in parts]}


def _input_messages(contents: Any) -> list[msg.Part] | None:
    """The request's contents as messages; loose parts form one user message, as the SDK does."""
    if isinstance(contents, (str, dict)) or not isinstance(contents, (list, tuple)):
        contents = [contents]
    messages: list[msg.Part] = []
    loose: list[msg.Part] = []
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


def _system_instructions(instruction: Any) -> list[msg.Part] | None:
    if instruction is None:
        return None
    if isinstance(instruction, str):
        return [msg.text_part(instruction)]
    if _is_content(instruction):
        return [_part(p) for p in msg.field(instruction, "parts") or ()]
    if isinstance(instruction, (list, tuple)):
        return [_part(p) for p in instruction]
    return [_part(instruction)]


def _tool_definitions(tools: Any) -> list[msg.Part] | None:
    if not isinstance(tools, (list, tuple)):
        return None
    definitions: list[msg.Part] = []
    for tool in tools:
        if callable(tool) and not isinstance(tool, dict):  # a Python function: the SDK declares it
            definitions.append({"type": "function", "name": getattr(tool, "__name__", str(tool))})
            continue
        declarations = msg.field(tool, "function_declarations")
        if declarations:
            for declaration in declarations:
                definition: msg.Part = {
                    "type": "function",
                    "name": msg.field(declaration, "name"),
                }
                description = msg.field(declaration, "description")
                if description:
                    definition["description"] = description
                parameters = msg.field(declaration, "parameters_json_schema") or msg.field(
                    declaration, "parameters"
                )
                if parameters is not None:
                    definition["parameters"] = parameters
                definitions.append(definition)
            continue
        # Built-in tools (google_search, code_execution, url_context, ...): their kind.
        names = tool.keys() if isinstance(tool, dict) else getattr(tool, "model_fields_set", ())
        definitions.extend(
            {"type": str(name)} for name in names if msg.field(tool, name) is not None
        )
    return definitions


def _finish_reason(reason: Any) -> str | None:
    if reason is None:
        return None
    value = getattr(reason, "value", reason)
    return str(value).lower() if value else None


# --- responses ---------------------------------------------------------------------------------


def _block_reason(feedback: Any) -> str | None:
    """Why the API blocked the prompt (`promptFeedback.blockReason`), as a finish reason: such
    an answer has no candidate, and the client returns it rather than raises."""
    return _finish_reason(getattr(feedback, "block_reason", None))


def _sum(usage: Any, *names: str) -> int | None:
    """The sum of the counts `usage` reports under `names`; None when it reports none."""
    counts = [c for name in names if (c := msg.int_or_none(msg.field(usage, name))) is not None]
    return sum(counts) if counts else None


def _modality(details: Any, modality: str) -> int | None:
    """The tokens of one modality (AUDIO, IMAGE) in a list of per-modality counts."""
    counts = [
        count
        for entry in details or ()
        if getattr(kind := msg.field(entry, "modality"), "value", kind) == modality
        and (count := msg.int_or_none(msg.field(entry, "token_count"))) is not None
    ]
    return sum(counts) if counts else None


def _add_usage(call: LLMCall, attributes: Attributes, model: str | None, usage: Any) -> None:
    # Google bills thinking as output and tool-use prompts as input.
    prompt_details = msg.field(usage, "prompt_tokens_details")
    output_details = msg.field(usage, "candidates_tokens_details")
    call.add_usage(
        attributes,
        model,
        _sum(usage, "prompt_token_count", "tool_use_prompt_token_count"),
        _sum(usage, "candidates_token_count", "thoughts_token_count"),
        cached_input_tokens=msg.int_or_none(msg.field(usage, "cached_content_token_count")),
        reasoning_output_tokens=msg.int_or_none(msg.field(usage, "thoughts_token_count")),
        audio_input_tokens=_modality(prompt_details, "AUDIO"),
        audio_output_tokens=_modality(output_details, "AUDIO"),
        image_input_tokens=_modality(prompt_details, "IMAGE"),
        image_output_tokens=_modality(output_details, "IMAGE"),
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
    if not candidates and (blocked := _block_reason(getattr(response, "prompt_feedback", None))):
        reasons = (blocked,)
    response_basics(attributes, getattr(response, "response_id", None), model, reasons)
    if capture:
        try:
            attributes[semconv.OUTPUT_MESSAGES] = to_json(
                [
                    msg.output_message(
                        _output_parts(c.content.parts if c.content else None),
                        _finish_reason(c.finish_reason),
                        (c.content.role if c.content else None) or "model",
                    )
                    for c in candidates
                ]
            )
        except Exception:
            report_internal_error("converting google-genai output messages")
    _add_usage(call, attributes, model or request_model, getattr(response, "usage_metadata", None))
    return attributes


class _CandidateState:
    __slots__ = ("finish_reason", "parts", "role")

    def __init__(self) -> None:
        self.role: str | None = None
        self.parts: list[msg.Part] = []
        self.finish_reason: str | None = None


class _StreamAccumulator(ResponseState):
    """Each streamed chunk is a whole GenerateContentResponse: text arrives piece by piece,
    function calls whole, and usage (cumulative) rides on every chunk."""

    __slots__ = ("_blocked", "_candidates", "_usage")

    def __init__(self, request_model: str | None, capture: bool) -> None:
        super().__init__(request_model, capture)
        self._usage: Any = None
        self._candidates: dict[int, _CandidateState] = {}
        self._blocked: str | None = None  # the prompt's block reason

    def add(self, chunk: Any) -> None:
        if self._response_id is None and chunk.response_id:
            self._response_id = chunk.response_id
        if self._model is None and chunk.model_version:
            self._model = chunk.model_version
        if chunk.usage_metadata is not None:
            self._usage = chunk.usage_metadata
        if chunk.prompt_feedback is not None:
            self._blocked = _block_reason(chunk.prompt_feedback) or self._blocked
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
            for part in _output_parts(candidate.content.parts):
                msg.append_part(state.parts, part)

    def attributes(self, call: LLMCall) -> Attributes:
        attributes: Attributes = {}
        states = [self._candidates[index] for index in sorted(self._candidates)]
        reasons = tuple(state.finish_reason for state in states if state.finish_reason)
        if not states and self._blocked:
            reasons = (self._blocked,)
        response_basics(attributes, self._response_id, self._model, reasons)
        if self._capture:
            attributes[semconv.OUTPUT_MESSAGES] = to_json(
                [
                    msg.output_message(state.parts, state.finish_reason, state.role or "model")
                    for state in states
                ]
            )
        _add_usage(call, attributes, self.model, self._usage)
        return attributes


# --- the wrappers ------------------------------------------------------------------------------


class GoogleGenAIWrappers(CallWrappers):
    """Spans for the google-genai client's generate_content requests."""

    library = "google-genai"
    targets = _TARGETS
    response_reader = staticmethod(_response_attributes)
    stream_reader = _StreamAccumulator

    def describe(self, kind: str, instance: Any, args: Any, kwargs: Any) -> CallStart:
        api_client = getattr(instance, "_api_client", None)
        provider = (
            semconv.PROVIDER_GCP_VERTEX_AI
            if getattr(api_client, "vertexai", False)
            else semconv.PROVIDER_GCP_GEMINI
        )
        model = request_model(kwargs)
        operation = semconv.OP_GENERATE_CONTENT
        stream = kind == "stream"
        base_url = getattr(getattr(api_client, "_http_options", None), "base_url", None)
        attributes = opening(operation, provider, model, stream, server_attributes(base_url))
        config = kwargs.get("config")
        _PARAMETERS.read(config, attributes)
        self.add_content(
            attributes,
            lambda: {
                semconv.INPUT_MESSAGES: _input_messages(kwargs.get("contents")),
                semconv.SYSTEM_INSTRUCTIONS: _system_instructions(
                    msg.field(config, "system_instruction")
                ),
                semconv.TOOL_DEFINITIONS: _tool_definitions(msg.field(config, "tools")),
            },
        )
        return CallStart(kind, operation, provider, model, attributes, stream)


class GoogleGenAIInstrumentor(ClientInstrumentor):
    """Spans for the `google-genai` client's `models.generate_content(_stream)`, sync and async."""

    wrappers = GoogleGenAIWrappers
