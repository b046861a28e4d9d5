"""OpenAI client instrumentation: chat, Responses, legacy completions and embeddings.

`OpenAIInstrumentor` patches, with wrapt, the client methods every call goes through:
`chat.completions.create` (plain and `stream=True`; the `stream()` helper calls it too),
`chat.completions.parse`, `responses.create` (plain and streamed; `responses.stream()`
calls it too), `responses.parse`, the legacy `completions.create` and
`embeddings.create`, on the sync and async resource classes. Each call becomes one
CLIENT span built by `_spans`; streams are wrapped by `_streams`. The provider
(`gen_ai.provider.name`) comes from the client's base URL, so any OpenAI-compatible API
is named for what it is. The `openai` package is imported only when instrumenting.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

from opentelemetry import trace

from assay.instrumentation import semconv
from assay.instrumentation._spans import (
    Attributes,
    LLMCall,
    report_internal_error,
    to_json,
)
from assay.instrumentation._streams import AsyncStreamProxy, SyncStreamProxy, end_stream_early
from assay.instrumentation.providers import _openai_responses as _responses
from assay.instrumentation.providers._common import (
    Endpoint,
    ProviderInstrumentor,
    ProviderWrappers,
    Target,
    field,
    image_url_part,
    request_model,
    response_identity,
    run,
    run_async,
    server_attributes,
)
from assay.instrumentation.providers.package import OPENAI_INSTRUMENTS

_CHAT = "openai.resources.chat.completions"
_EMBEDDINGS = "openai.resources.embeddings"
_RESPONSES = "openai.resources.responses.responses"
_COMPLETIONS = "openai.resources.completions"
_CHAT_HELPER = "openai.lib.streaming.chat._completions"
_RESPONSES_HELPER = "openai.lib.streaming.responses._responses"
# (module, class, method, kind of call). Missing ones (older or newer clients) are skipped.
_TARGETS: tuple[Target, ...] = (
    (_CHAT, "Completions", "create", "chat"),
    (_CHAT, "AsyncCompletions", "create", "async_chat"),
    (_CHAT, "Completions", "parse", "chat"),
    (_CHAT, "AsyncCompletions", "parse", "async_chat"),
    ("openai.resources.beta.chat.completions", "Completions", "parse", "chat"),
    ("openai.resources.beta.chat.completions", "AsyncCompletions", "parse", "async_chat"),
    (_EMBEDDINGS, "Embeddings", "create", "embeddings"),
    (_EMBEDDINGS, "AsyncEmbeddings", "create", "async_embeddings"),
    (_RESPONSES, "Responses", "create", "responses"),
    (_RESPONSES, "AsyncResponses", "create", "async_responses"),
    (_RESPONSES, "Responses", "parse", "responses"),
    (_RESPONSES, "AsyncResponses", "parse", "async_responses"),
    (_COMPLETIONS, "Completions", "create", "completions"),
    (_COMPLETIONS, "AsyncCompletions", "create", "async_completions"),
    (_CHAT_HELPER, "ChatCompletionStream", "close", "helper_close"),
    (_CHAT_HELPER, "AsyncChatCompletionStream", "close", "async_helper_close"),
    (_RESPONSES_HELPER, "ResponseStream", "close", "helper_close"),
    (_RESPONSES_HELPER, "AsyncResponseStream", "close", "async_helper_close"),
)


_FLOAT_PARAMS = (
    ("temperature", semconv.REQUEST_TEMPERATURE),
    ("top_p", semconv.REQUEST_TOP_P),
    ("frequency_penalty", semconv.REQUEST_FREQUENCY_PENALTY),
    ("presence_penalty", semconv.REQUEST_PRESENCE_PENALTY),
)
_NUMBER = (int, float)


# --- provider detection ------------------------------------------------------------------------

# OpenAI-compatible APIs by host name (the name or a subdomain of it), with the conventions'
# provider names where they have one.
_PROVIDER_HOSTS: tuple[tuple[str, str], ...] = (
    ("openai.azure.com", semconv.PROVIDER_AZURE_OPENAI),
    ("cognitiveservices.azure.com", semconv.PROVIDER_AZURE_OPENAI),
    ("api.groq.com", semconv.PROVIDER_GROQ),
    ("api.together.xyz", semconv.PROVIDER_TOGETHER_AI),
    ("api.together.ai", semconv.PROVIDER_TOGETHER_AI),
    ("api.deepseek.com", semconv.PROVIDER_DEEPSEEK),
    ("openrouter.ai", semconv.PROVIDER_OPENROUTER),
    ("api.mistral.ai", semconv.PROVIDER_MISTRAL_AI),
    ("api.x.ai", semconv.PROVIDER_X_AI),
    ("api.perplexity.ai", semconv.PROVIDER_PERPLEXITY),
    ("api.fireworks.ai", semconv.PROVIDER_FIREWORKS_AI),
    ("generativelanguage.googleapis.com", semconv.PROVIDER_GCP_GEMINI),
)
# Local OpenAI-compatible servers by their default ports: Ollama (11434) and vLLM (8000).
# Any other server keeps "openai"; its address and port are on the span either way.
_LOCAL_SERVER_PORTS = {11434: semconv.PROVIDER_OLLAMA, 8000: semconv.PROVIDER_VLLM}
_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0", "host.docker.internal"})
_AZURE_CLIENTS = frozenset({"AzureOpenAI", "AsyncAzureOpenAI"})


def _provider_of(host: str, port: int | None) -> str:
    host = host.lower()
    for name, provider in _PROVIDER_HOSTS:
        if host == name or host.endswith("." + name):
            return provider
    if port == 11434 or (host in _LOCAL_HOSTS and port in _LOCAL_SERVER_PORTS):
        return _LOCAL_SERVER_PORTS[port]
    return semconv.PROVIDER_OPENAI


def _detect_endpoint(client: Any, base_url: object) -> Endpoint:
    host, attributes = server_attributes(base_url)
    provider = _provider_of(host, attributes.get(semconv.SERVER_PORT))
    if any(cls.__name__ in _AZURE_CLIENTS for cls in type(client).__mro__):
        provider = semconv.PROVIDER_AZURE_OPENAI
    attributes[semconv.PROVIDER_NAME] = provider
    return Endpoint(base_url, provider, attributes)


# --- messages in the GenAI JSON shape ----------------------------------------------------------


def _content_parts(content: Any, parts: list[dict[str, Any]]) -> None:
    if content is None:
        return
    if isinstance(content, str):
        parts.append({"type": "text", "content": content})
        return
    if not isinstance(content, (list, tuple)):
        parts.append({"type": "text", "content": str(content)})
        return
    for part in content:
        kind = field(part, "type")
        if kind == "text":
            parts.append({"type": "text", "content": field(part, "text")})
        elif kind == "image_url":
            parts.append(image_url_part(field(field(part, "image_url"), "url")))
        elif kind == "input_audio":
            audio_format = field(field(part, "input_audio"), "format")
            parts.append(
                {"type": "blob", "modality": "audio", "mime_type": f"audio/{audio_format}"}
            )
        elif kind == "file":
            file = field(part, "file")
            parts.append(
                {
                    "type": "file",
                    "file_id": field(file, "file_id"),
                    "name": field(file, "filename"),
                }
            )
        elif kind == "refusal":
            parts.append({"type": "refusal", "content": field(part, "refusal")})
        else:
            parts.append({"type": str(kind)})


def _plain_text(content: Any) -> Any:
    if isinstance(content, (list, tuple)):
        return "".join(str(field(part, "text") or "") for part in content)
    return content


def _tool_call_part(tool_call: Any) -> dict[str, Any]:
    function = field(tool_call, "function")
    if function is not None:
        name, arguments = field(function, "name"), field(function, "arguments")
    else:  # custom tools carry free-form input instead of JSON arguments
        custom = field(tool_call, "custom")
        name, arguments = field(custom, "name"), field(custom, "input")
    return {
        "type": "tool_call",
        "id": field(tool_call, "id"),
        "name": name,
        "arguments": arguments,
    }


def _input_messages(messages: Any) -> list[dict[str, Any]] | None:
    # Only a list or tuple is read: iterating a generator would consume the user's request.
    if not isinstance(messages, (list, tuple)):
        return None
    converted = []
    for message in messages:
        if type(message) is dict:
            content = message.get("content")
            # The common case, a plain text message, in one step.
            if type(content) is str and len(message) == 2:
                converted.append(
                    {"role": message.get("role"), "parts": [{"type": "text", "content": content}]}
                )
                continue
        converted.append(_input_message(message))
    return converted


def _input_message(message: Any) -> dict[str, Any]:
    role = field(message, "role")
    parts: list[dict[str, Any]] = []
    if role == "tool":
        parts.append(
            {
                "type": "tool_call_response",
                "id": field(message, "tool_call_id"),
                "response": _plain_text(field(message, "content")),
            }
        )
    elif role == "function":  # the deprecated function-calling result
        parts.append(
            {
                "type": "tool_call_response",
                "id": field(message, "name"),
                "response": field(message, "content"),
            }
        )
    else:
        _content_parts(field(message, "content"), parts)
        tool_calls = field(message, "tool_calls")
        if tool_calls:
            parts.extend(_tool_call_part(tool_call) for tool_call in tool_calls)
        function_call = field(message, "function_call")
        if function_call is not None:
            parts.append(_tool_call_part({"function": function_call}))
    entry: dict[str, Any] = {"role": role, "parts": parts}
    name = field(message, "name")
    if name and role != "function":
        entry["name"] = name
    return entry


def _tool_definitions(tools: Any) -> list[dict[str, Any]] | None:
    if not isinstance(tools, (list, tuple)):
        return None
    definitions = []
    for tool in tools:
        function = field(tool, "function")
        if function is None:
            definitions.append(tool)
            continue
        definition = {"type": "function", "name": field(function, "name")}
        description = field(function, "description")
        if description:
            definition["description"] = description
        parameters = field(function, "parameters")
        if parameters is not None:
            definition["parameters"] = parameters
        definitions.append(definition)
    return definitions


def _output_message(
    role: str | None,
    text: str | None,
    refusal: str | None,
    tool_calls: list[dict[str, Any]],
    finish_reason: str | None,
) -> dict[str, Any]:
    parts: list[dict[str, Any]] = []
    if text:
        parts.append({"type": "text", "content": text})
    if refusal:
        parts.append({"type": "refusal", "content": refusal})
    parts.extend(tool_calls)
    message: dict[str, Any] = {"role": role or "assistant", "parts": parts}
    if finish_reason:
        message["finish_reason"] = finish_reason
    return message


# --- request and response attributes -----------------------------------------------------------


def _chat_request_attributes(
    kwargs: Mapping[str, Any], attributes: Attributes, capture: bool
) -> None:
    # Keyword values may be the client's `omit`/`NOT_GIVEN` sentinels (the `stream()` helper
    # passes every parameter): the type checks below skip them.
    for key, name in _FLOAT_PARAMS:
        value = kwargs.get(key)
        if type(value) in _NUMBER:
            attributes[name] = value
    max_tokens = kwargs.get("max_completion_tokens")
    if type(max_tokens) is not int:
        max_tokens = kwargs.get("max_tokens")
    if type(max_tokens) is int:
        attributes[semconv.REQUEST_MAX_TOKENS] = max_tokens
    seed = kwargs.get("seed")
    if type(seed) is int:
        attributes[semconv.REQUEST_SEED] = seed
    choices = kwargs.get("n")
    if type(choices) is int and choices != 1:
        attributes[semconv.REQUEST_CHOICE_COUNT] = choices
    stop = kwargs.get("stop")
    if isinstance(stop, str):
        attributes[semconv.REQUEST_STOP_SEQUENCES] = (stop,)
    elif isinstance(stop, (list, tuple)):
        attributes[semconv.REQUEST_STOP_SEQUENCES] = tuple(str(s) for s in stop)
    if capture:
        # Content is the most varied input: a failure here loses the content, not the span.
        try:
            messages = _input_messages(kwargs.get("messages"))
            if messages is not None:
                attributes[semconv.INPUT_MESSAGES] = to_json(messages)
            tools = _tool_definitions(kwargs.get("tools"))
            if tools:
                attributes[semconv.TOOL_DEFINITIONS] = to_json(tools)
        except Exception:
            report_internal_error("converting openai input messages")


def _add_chat_usage(
    call: LLMCall, attributes: Attributes, model: str | None, usage: Any | None
) -> None:
    if usage is None:
        call.add_usage(attributes, model, None, None)
        return
    prompt_details = getattr(usage, "prompt_tokens_details", None)
    completion_details = getattr(usage, "completion_tokens_details", None)
    call.add_usage(
        attributes,
        model,
        getattr(usage, "prompt_tokens", None),
        getattr(usage, "completion_tokens", None),
        cached_input_tokens=getattr(prompt_details, "cached_tokens", None),
        cache_creation_input_tokens=getattr(prompt_details, "cache_write_tokens", None),
        reasoning_output_tokens=getattr(completion_details, "reasoning_tokens", None),
    )


def _output_messages(choices: Any) -> list[dict[str, Any]]:
    messages = []
    for choice in choices:
        message = choice.message
        tool_calls = [_tool_call_part(tool_call) for tool_call in message.tool_calls or ()]
        function_call = getattr(message, "function_call", None)
        if function_call is not None:
            tool_calls.append(_tool_call_part({"function": function_call}))
        messages.append(
            _output_message(
                message.role,
                message.content,
                getattr(message, "refusal", None),
                tool_calls,
                choice.finish_reason,
            )
        )
    return messages


def _choices_response_attributes(
    call: LLMCall,
    response: Any,
    request_model: str | None,
    capture: bool,
    to_messages: Callable[[Any], list[dict[str, Any]]],
) -> Attributes:
    """Chat completions and legacy completions: choices, each with a finish reason."""
    attributes: Attributes = {}
    model = response_identity(response, attributes)
    choices = getattr(response, "choices", None) or ()
    finish_reasons = tuple(choice.finish_reason for choice in choices if choice.finish_reason)
    if finish_reasons:
        attributes[semconv.RESPONSE_FINISH_REASONS] = finish_reasons
    if capture:
        try:
            attributes[semconv.OUTPUT_MESSAGES] = to_json(to_messages(choices))
        except Exception:
            report_internal_error("converting openai output messages")
    _add_chat_usage(call, attributes, model or request_model, getattr(response, "usage", None))
    return attributes


def _chat_response_attributes(
    call: LLMCall, response: Any, request_model: str | None, capture: bool
) -> Attributes:
    return _choices_response_attributes(call, response, request_model, capture, _output_messages)


def _embeddings_response_attributes(
    call: LLMCall, response: Any, request_model: str | None, dimensions_known: bool
) -> Attributes:
    attributes: Attributes = {}
    model = getattr(response, "model", None)
    if model:
        attributes[semconv.RESPONSE_MODEL] = model
    if not dimensions_known:
        data = getattr(response, "data", None)
        vector = getattr(data[0], "embedding", None) if data else None
        if isinstance(vector, list):
            attributes[semconv.EMBEDDINGS_DIMENSION_COUNT] = len(vector)
    usage = getattr(response, "usage", None)
    # Embeddings have input tokens only; the output-token count does not apply.
    input_tokens = getattr(usage, "prompt_tokens", None) if usage is not None else None
    call.add_usage(attributes, model or request_model, input_tokens, None)
    return attributes


class _ChoiceState:
    __slots__ = ("finish_reason", "refusal", "role", "text", "tool_calls")

    def __init__(self) -> None:
        self.role: str | None = None
        self.text: list[str] = []
        self.refusal: list[str] = []
        # by tool-call index: [id, name, argument fragments]
        self.tool_calls: dict[int, list[Any]] = {}
        self.finish_reason: str | None = None


class _ChatStreamAccumulator:
    """What a chat stream's span needs, gathered chunk by chunk without copying chunks."""

    __slots__ = ("_capture", "_choices", "_model", "_request_model", "_response_id", "_usage")

    def __init__(self, request_model: str | None, capture: bool) -> None:
        self._request_model = request_model
        self._capture = capture
        self._response_id: str | None = None
        self._model: str | None = None
        self._usage: Any = None
        self._choices: dict[int, _ChoiceState] = {}

    def add(self, chunk: Any) -> None:
        # Azure's first chunk (prompt filter results) has an empty id and model.
        if self._response_id is None and chunk.id:
            self._response_id = chunk.id
        if self._model is None and chunk.model:
            self._model = chunk.model
        # getattr: LiteLLM's OpenAI-shaped chunks leave out `usage` (and `delta.refusal`).
        usage = getattr(chunk, "usage", None)
        if usage is not None:
            self._usage = usage
        for choice in chunk.choices:
            state = self._choices.get(choice.index)
            if state is None:
                state = self._choices[choice.index] = _ChoiceState()
            if choice.finish_reason:
                state.finish_reason = choice.finish_reason
            if self._capture:
                self._add_content(state, choice)

    @staticmethod
    def _add_content(state: _ChoiceState, choice: Any) -> None:
        delta = choice.delta
        if delta is None:
            return
        if delta.role:
            state.role = delta.role
        if delta.content:
            state.text.append(delta.content)
        refusal = getattr(delta, "refusal", None)  # LiteLLM's chunks leave it out
        if refusal:
            state.refusal.append(refusal)
        if delta.tool_calls:
            for tool_call in delta.tool_calls:
                entry = state.tool_calls.get(tool_call.index)
                if entry is None:
                    entry = state.tool_calls[tool_call.index] = [None, None, []]
                if tool_call.id:
                    entry[0] = tool_call.id
                function = tool_call.function
                if function is not None:
                    if function.name:
                        entry[1] = function.name
                    if function.arguments:
                        entry[2].append(function.arguments)
        function_call = delta.function_call
        if function_call is not None:
            entry = state.tool_calls.setdefault(-1, [None, None, []])
            if function_call.name:
                entry[1] = function_call.name
            if function_call.arguments:
                entry[2].append(function_call.arguments)

    def attributes(self, call: LLMCall) -> Attributes:
        attributes: Attributes = {}
        if self._response_id:
            attributes[semconv.RESPONSE_ID] = self._response_id
        if self._model:
            attributes[semconv.RESPONSE_MODEL] = self._model
        choices = [self._choices[index] for index in sorted(self._choices)]
        finish_reasons = tuple(state.finish_reason for state in choices if state.finish_reason)
        if finish_reasons:
            attributes[semconv.RESPONSE_FINISH_REASONS] = finish_reasons
        if self._capture:
            try:
                attributes[semconv.OUTPUT_MESSAGES] = to_json(self._output_messages(choices))
            except Exception:
                report_internal_error("converting openai streamed messages")
        _add_chat_usage(call, attributes, self._model or self._request_model, self._usage)
        return attributes

    @staticmethod
    def _output_messages(choices: list[_ChoiceState]) -> list[dict[str, Any]]:
        return [
            _output_message(
                state.role,
                "".join(state.text),
                "".join(state.refusal),
                [
                    {
                        "type": "tool_call",
                        "id": tc[0],
                        "name": tc[1],
                        "arguments": "".join(tc[2]),
                    }
                    for _, tc in sorted(state.tool_calls.items())
                ],
                state.finish_reason,
            )
            for state in choices
        ]


def _embeddings_request_attributes(
    kwargs: Mapping[str, Any], attributes: Attributes, capture: bool
) -> None:
    encoding_format = kwargs.get("encoding_format")
    if isinstance(encoding_format, str):
        attributes[semconv.REQUEST_ENCODING_FORMATS] = (encoding_format,)
    dimensions = kwargs.get("dimensions")
    if type(dimensions) is int:
        attributes[semconv.EMBEDDINGS_DIMENSION_COUNT] = dimensions


# --- legacy text completions -------------------------------------------------------------------


def _completions_request_attributes(
    kwargs: Mapping[str, Any], attributes: Attributes, capture: bool
) -> None:
    _chat_request_attributes(kwargs, attributes, False)  # the same sampling parameters
    if not capture:
        return
    prompt = kwargs.get("prompt")
    prompts = [prompt] if isinstance(prompt, str) else prompt
    # A prompt of token ids (lists of ints) is not text: left out.
    if isinstance(prompts, (list, tuple)) and all(isinstance(p, str) for p in prompts):
        try:
            attributes[semconv.INPUT_MESSAGES] = to_json(
                [{"role": "user", "parts": [{"type": "text", "content": p}]} for p in prompts]
            )
        except Exception:
            report_internal_error("converting an openai completion prompt")


def _completion_messages(choices: Any) -> list[dict[str, Any]]:
    return [_output_message("assistant", c.text, None, [], c.finish_reason) for c in choices]


def _completions_response_attributes(
    call: LLMCall, response: Any, request_model: str | None, capture: bool
) -> Attributes:
    return _choices_response_attributes(
        call, response, request_model, capture, _completion_messages
    )


class _CompletionStreamAccumulator(_ChatStreamAccumulator):
    """What a legacy completion stream's span needs: chat's, with text in place of deltas."""

    __slots__ = ()

    @staticmethod
    def _add_content(state: _ChoiceState, choice: Any) -> None:
        if choice.text:
            state.text.append(choice.text)


def _streamed(kwargs: Mapping[str, Any]) -> bool:
    return kwargs.get("stream") is True


# --- the wrappers ------------------------------------------------------------------------------


class _OpenAIWrappers(ProviderWrappers):
    """The wrapt wrappers, bound to one tracer and capture setting."""

    label = "an openai"

    def __init__(self, tracer: trace.Tracer, capture_content: bool, openai_module: Any) -> None:
        super().__init__(tracer, capture_content, _detect_endpoint)
        self._stream_cls: type = openai_module.Stream
        self._async_stream_cls: type = openai_module.AsyncStream
        try:  # a private module: `with_raw_response` results are read only where it exists
            legacy = importlib.import_module("openai._legacy_response")
        except ImportError:
            legacy = None
        self._legacy_response_cls: Any = getattr(legacy, "LegacyAPIResponse", None)

    # -- finishing a call

    def _parsed(self, result: Any, stream: bool) -> Any:
        """The response model inside `result`, or None when reading it would change the call."""
        if hasattr(result, "choices") or hasattr(result, "data") or hasattr(result, "output"):
            return result
        # `with_raw_response`: parse() is cached, so the user's own parse() gets this same
        # object. A raw stream or a `with_streaming_response` body is left untouched.
        if (
            not stream
            and self._legacy_response_cls is not None
            and isinstance(result, self._legacy_response_cls)
        ):
            return result.parse()
        return None

    def _finish(
        self,
        call: LLMCall,
        result: Any,
        kwargs: Mapping[str, Any],
        sync: bool,
        read_response: Callable[[LLMCall, Any, str | None, bool], Attributes],
        new_accumulator: Callable[[str | None, bool], Any],
    ) -> Any:
        try:
            stream = kwargs.get("stream") is True
            if stream:
                proxy_cls = SyncStreamProxy if sync else AsyncStreamProxy
                stream_cls = self._stream_cls if sync else self._async_stream_cls
                if isinstance(result, stream_cls):
                    accumulator = new_accumulator(request_model(kwargs), self.capture_content)
                    return proxy_cls(result, call, accumulator)
            response = self._parsed(result, stream)
            if response is None:
                call.end()
            else:
                call.end(read_response(call, response, request_model(kwargs), self.capture_content))
        except Exception:
            report_internal_error("reading an openai response")
            call.end()
        return result

    def _finish_embeddings(self, call: LLMCall, result: Any, kwargs: Mapping[str, Any]) -> Any:
        try:
            response = self._parsed(result, stream=False)
            if response is None:
                call.end()
            else:
                dimensions_known = type(kwargs.get("dimensions")) is int
                call.end(
                    _embeddings_response_attributes(
                        call, response, request_model(kwargs), dimensions_known
                    )
                )
        except Exception:
            report_internal_error("reading an openai embeddings response")
            call.end()
        return result

    # -- the user's call runs exactly once, outside Assay's try blocks

    # -- the wrappers, one per API and sync/async. Module-level helpers are looked up per call.

    def chat(self, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        call = self.start(
            instance, kwargs, semconv.OP_CHAT, _streamed(kwargs), _chat_request_attributes
        )
        if call is None:
            return wrapped(*args, **kwargs)
        result = run(call, wrapped, args, kwargs)
        return self._finish(
            call, result, kwargs, True, _chat_response_attributes, _ChatStreamAccumulator
        )

    async def async_chat(self, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        call = self.start(
            instance, kwargs, semconv.OP_CHAT, _streamed(kwargs), _chat_request_attributes
        )
        if call is None:
            return await wrapped(*args, **kwargs)
        result = await run_async(call, wrapped, args, kwargs)
        return self._finish(
            call, result, kwargs, False, _chat_response_attributes, _ChatStreamAccumulator
        )

    def responses(self, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        call = self.start(
            instance, kwargs, semconv.OP_CHAT, _streamed(kwargs), _responses.request_attributes
        )
        if call is None:
            return wrapped(*args, **kwargs)
        result = run(call, wrapped, args, kwargs)
        return self._finish(
            call,
            result,
            kwargs,
            True,
            _responses.response_attributes,
            _responses.ResponsesStreamAccumulator,
        )

    async def async_responses(self, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        call = self.start(
            instance, kwargs, semconv.OP_CHAT, _streamed(kwargs), _responses.request_attributes
        )
        if call is None:
            return await wrapped(*args, **kwargs)
        result = await run_async(call, wrapped, args, kwargs)
        return self._finish(
            call,
            result,
            kwargs,
            False,
            _responses.response_attributes,
            _responses.ResponsesStreamAccumulator,
        )

    def completions(self, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        call = self.start(
            instance,
            kwargs,
            semconv.OP_TEXT_COMPLETION,
            _streamed(kwargs),
            _completions_request_attributes,
        )
        if call is None:
            return wrapped(*args, **kwargs)
        result = run(call, wrapped, args, kwargs)
        return self._finish(
            call,
            result,
            kwargs,
            True,
            _completions_response_attributes,
            _CompletionStreamAccumulator,
        )

    async def async_completions(self, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        call = self.start(
            instance,
            kwargs,
            semconv.OP_TEXT_COMPLETION,
            _streamed(kwargs),
            _completions_request_attributes,
        )
        if call is None:
            return await wrapped(*args, **kwargs)
        result = await run_async(call, wrapped, args, kwargs)
        return self._finish(
            call,
            result,
            kwargs,
            False,
            _completions_response_attributes,
            _CompletionStreamAccumulator,
        )

    def embeddings(self, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        call = self.start(
            instance, kwargs, semconv.OP_EMBEDDINGS, None, _embeddings_request_attributes
        )
        if call is None:
            return wrapped(*args, **kwargs)
        result = run(call, wrapped, args, kwargs)
        return self._finish_embeddings(call, result, kwargs)

    async def async_embeddings(self, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        call = self.start(
            instance, kwargs, semconv.OP_EMBEDDINGS, None, _embeddings_request_attributes
        )
        if call is None:
            return await wrapped(*args, **kwargs)
        result = await run_async(call, wrapped, args, kwargs)
        return self._finish_embeddings(call, result, kwargs)

    # The `stream()` helpers' close() closes the HTTP response, not the stream the helper
    # reads: the span of a helper left early must end there too, not at garbage collection.

    def helper_close(self, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        try:
            return wrapped(*args, **kwargs)
        finally:
            end_stream_early(getattr(instance, "_raw_stream", None))

    async def async_helper_close(self, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        try:
            return await wrapped(*args, **kwargs)
        finally:
            end_stream_early(getattr(instance, "_raw_stream", None))


# --- the instrumentor --------------------------------------------------------------------------


class OpenAIInstrumentor(ProviderInstrumentor):
    """Spans for the `openai` client (1.40 and later)."""

    library = "openai"
    instruments = OPENAI_INSTRUMENTS
    targets = _TARGETS

    def make_wrappers(self, tracer: trace.Tracer, capture_content: bool, module: Any) -> Any:
        return _OpenAIWrappers(tracer, capture_content, module)
