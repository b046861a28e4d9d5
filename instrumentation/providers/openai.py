"""OpenAI client instrumentation: chat, Responses, legacy completions and embeddings.

`OpenAIInstrumentor` patches the client methods every call goes through:
`chat.completions.create` (plain and `stream=True`; the `stream()` helper calls it too),
`chat.completions.parse`, `responses.create` (plain and streamed; `responses.stream()`
calls it too), `responses.parse`, the legacy `completions.create` and
`embeddings.create`, on the sync and async resource classes. The provider
(`gen_ai.provider.name`) comes from the client's base URL, so any OpenAI-compatible API
is named for what it is.

Streams report usage whatever the application asked: a chat or completions stream
without `stream_options.include_usage` is sent with it, and the extra usage-only chunk
it brings is read for the span and kept from the application, which sees the stream it
asked for. A server that refuses the option gets the application's own request at once
(the call succeeds as it would without Assay) and is not asked again (per base URL);
its streams' tokens are then estimated, flagged `assay.usage.source = estimated`.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from assay.instrumentation import semconv
from assay.instrumentation._spans import Attributes, LLMCall
from assay.instrumentation._streams import StreamAccumulator, end_stream_early
from assay.instrumentation.providers import _chat_chunks as chat
from assay.instrumentation.providers import _messages as msg
from assay.instrumentation.providers import _openai_responses as responses
from assay.instrumentation.providers import _raw_responses as raw
from assay.instrumentation.providers._call import CallStart, CallWrappers, Wrapper, opening
from assay.instrumentation.providers._instrumentor import ClientInstrumentor, Target
from assay.instrumentation.providers._request import (
    Endpoint,
    raw_response_kind,
    request_model,
    server_attributes,
)

logger = logging.getLogger("assay.instrumentation")

_CHAT = "openai.resources.chat.completions"
_BETA_CHAT = "openai.resources.beta.chat.completions"
_EMBEDDINGS = "openai.resources.embeddings"
_RESPONSES = "openai.resources.responses.responses"
_COMPLETIONS = "openai.resources.completions"
_CHAT_HELPER = "openai.lib.streaming.chat._completions"
_RESPONSES_HELPER = "openai.lib.streaming.responses._responses"

_TARGETS = tuple(
    Target(module, prefix + owner, (method,), kind, prefix == "Async")
    for prefix in ("", "Async")
    for module, owner, method, kind in (
        (_CHAT, "Completions", "create", "chat"),
        (_CHAT, "Completions", "parse", "chat"),
        (_BETA_CHAT, "Completions", "parse", "chat"),
        (_EMBEDDINGS, "Embeddings", "create", "embeddings"),
        (_RESPONSES, "Responses", "create", "responses"),
        (_RESPONSES, "Responses", "parse", "responses"),
        (_COMPLETIONS, "Completions", "create", "completions"),
        # The `stream()` helpers' close() closes the HTTP response, not the stream the
        # helper reads: the span of a helper left early must end there too.
        (_CHAT_HELPER, "ChatCompletionStream", "close", "helper_close"),
        (_RESPONSES_HELPER, "ResponseStream", "close", "helper_close"),
    )
) + raw.targets("openai")

_OPERATIONS = dict(
    chat=semconv.OP_CHAT,
    responses=semconv.OP_CHAT,
    completions=semconv.OP_TEXT_COMPLETION,
    embeddings=semconv.OP_EMBEDDINGS,
)

# --- provider detection ------------------------------------------------------------------------

# OpenAI-compatible APIs by their host names (the name or a subdomain of it), with the
# conventions' provider names where they have one.
_HOSTS_BY_PROVIDER = {
    semconv.PROVIDER_AZURE_OPENAI: ("openai.azure.com", "cognitiveservices.azure.com"),
    semconv.PROVIDER_GROQ: ("api.groq.com",),
    semconv.PROVIDER_TOGETHER_AI: ("api.together.xyz", "api.together.ai"),
    semconv.PROVIDER_DEEPSEEK: ("api.deepseek.com",),
    semconv.PROVIDER_OPENROUTER: ("openrouter.ai",),
    semconv.PROVIDER_MISTRAL_AI: ("api.mistral.ai",),
    semconv.PROVIDER_X_AI: ("api.x.ai",),
    semconv.PROVIDER_PERPLEXITY: ("api.perplexity.ai",),
    semconv.PROVIDER_FIREWORKS_AI: ("api.fireworks.ai",),
    semconv.PROVIDER_GCP_GEMINI: ("generativelanguage.googleapis.com",),
}
_PROVIDER_HOSTS = tuple(
    (host, provider) for provider, hosts in _HOSTS_BY_PROVIDER.items() for host in hosts
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


def provider_of_server(server: Mapping[str, Any]) -> str:
    """The provider an OpenAI-compatible endpoint is, from its `server_attributes`."""
    return _provider_of(
        str(server.get(semconv.SERVER_ADDRESS, "")), server.get(semconv.SERVER_PORT)
    )


def detect_endpoint(client: Any, base_url: object) -> Endpoint:
    """The provider and server attributes of a client, from its class and base URL."""
    server = server_attributes(base_url)
    provider = provider_of_server(server)
    if any(cls.__name__ in _AZURE_CLIENTS for cls in type(client).__mro__):
        provider = semconv.PROVIDER_AZURE_OPENAI
    return Endpoint(base_url, provider, server)


# --- requests ----------------------------------------------------------------------------------


def _chat_request(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    return chat.request_content(kwargs.get("messages"), kwargs.get("tools"))


def _completion_request(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    prompt = kwargs.get("prompt")
    prompts = [prompt] if isinstance(prompt, str) else prompt
    # A prompt of token ids (lists of ints) is not text: left out.
    if not (isinstance(prompts, (list, tuple)) and all(isinstance(p, str) for p in prompts)):
        return {}
    messages = [{"role": "user", "parts": [{"type": "text", "content": p}]} for p in prompts]
    return {semconv.INPUT_MESSAGES: messages}


def _embeddings_request(kwargs: Mapping[str, Any], attributes: Attributes) -> None:
    encoding_format = kwargs.get("encoding_format")
    if isinstance(encoding_format, str):
        attributes[semconv.REQUEST_ENCODING_FORMATS] = (encoding_format,)
    dimensions = kwargs.get("dimensions")
    if type(dimensions) is int:
        attributes[semconv.EMBEDDINGS_DIMENSION_COUNT] = dimensions


# --- responses ---------------------------------------------------------------------------------


def _embeddings_response(
    call: LLMCall, response: Any, request_model: str | None, dimensions_known: bool
) -> Attributes:
    attributes: Attributes = {}
    model = getattr(response, "model", None)
    if not isinstance(model, str) or not model:
        model = None
    else:
        attributes[semconv.RESPONSE_MODEL] = model
    if not dimensions_known:
        data = getattr(response, "data", None)
        vector = getattr(data[0], "embedding", None) if isinstance(data, list) and data else None
        if isinstance(vector, list):
            attributes[semconv.EMBEDDINGS_DIMENSION_COUNT] = len(vector)
    # Embeddings have input tokens only; the output-token count does not apply.
    input_tokens = msg.field(getattr(response, "usage", None), "prompt_tokens")
    call.add_usage(attributes, model or request_model, input_tokens, None)
    return attributes


# --- usage on streams ---------------------------------------------------------------------------

# The kinds whose streams report usage only when asked (`stream_options.include_usage`),
# and the request field whose text estimates the input when no usage comes.
_ASKED_USAGE = {"chat": "messages", "completions": "prompt"}
# The API errors a server answers an option it does not know with.
_REFUSAL_STATUSES = frozenset({400, 422})


# openai's errors raised after a whole chat answer came (openai.lib._parsing), carrying it.
_ANSWERED_ERRORS = frozenset({"LengthFinishReasonError", "ContentFilterFinishReasonError"})


@dataclass(slots=True)
class _Request:
    """What finishing an openai call needs of its request: the keyword arguments the
    application passed, and the base URL that answers (which may refuse usage on streams)."""

    kwargs: Mapping[str, Any]
    base_url: object


def _with_usage(kwargs: Mapping[str, Any]) -> dict[str, Any] | None:
    """The stream request asking for usage; None when the application asked itself, or reads
    the raw body (`with_raw_response`, `with_streaming_response`), where Assay cannot hide the
    usage chunk."""
    options = kwargs.get("stream_options")
    if not options:  # absent, None or the client's "not given" sentinel
        options = {}
    elif not isinstance(options, Mapping) or options.get("include_usage"):
        return None
    if raw_response_kind(kwargs) is not None:
        return None
    return {**kwargs, "stream_options": {**options, "include_usage": True}}


# --- the wrappers ------------------------------------------------------------------------------


class OpenAIWrappers(CallWrappers):
    """Spans for the openai client's chat, Responses, completions and embeddings calls."""

    library = "openai"
    targets = _TARGETS
    detect_endpoint = staticmethod(detect_endpoint)

    def __init__(self, tracer: Any, capture_content: bool) -> None:
        super().__init__(tracer, capture_content)
        # Base URLs whose server refused `stream_options`: their streams are sent as asked.
        self.refusing_usage: set[str] = set()
        self.raw_responses = raw.RawResponses(self)

    def describe(self, kind: str, instance: Any, args: Any, kwargs: Any) -> CallStart:
        endpoint = self.endpoint(instance)
        operation = _OPERATIONS[kind]
        model = request_model(kwargs)
        stream = kwargs.get("stream") is True
        embeddings = kind == "embeddings"
        attributes = opening(
            operation, endpoint.provider, model, None if embeddings else stream, endpoint.server
        )
        if embeddings:
            _embeddings_request(kwargs, attributes)
        elif kind == "responses":
            responses.PARAMETERS.read(kwargs, attributes)
            self.add_content(attributes, lambda: responses.request_content(kwargs))
        else:
            chat.CHAT_PARAMETERS.read(kwargs, attributes)
            content = _chat_request if kind == "chat" else _completion_request
            self.add_content(attributes, lambda: content(kwargs))
        start = CallStart(
            kind,
            operation,
            endpoint.provider,
            model,
            attributes,
            stream,
            _Request(kwargs, endpoint.base_url),
        )
        if stream and kind in _ASKED_USAGE and str(endpoint.base_url) not in self.refusing_usage:
            start.amended_kwargs = _with_usage(kwargs)
        return start

    # -- finishing a call

    def finish(self, call: LLMCall, start: CallStart, result: Any) -> Any:
        if start.stream:
            library = sys.modules["openai"]
            stream_classes = (library.Stream, library.AsyncStream)
            if isinstance(result, stream_classes):
                # Usage Assay asked for comes in a chunk of its own: kept from the application.
                hide = chat.UsageChunk() if start.amended_kwargs is not None else None
                return self.stream(call, start, result, hide)
        elif (response := self._parsed(result)) is not None:
            call.end(self.response_attributes(call, start, response))
            return result
        if raw.is_raw_response(result):  # the body the application reads: the span waits
            return self.raw_responses.defer(call, start, result)
        call.end()
        return result

    @staticmethod
    def _parsed(result: Any) -> Any:
        """The response model inside `result`, or None when reading it would change the call."""
        if hasattr(result, "choices") or hasattr(result, "data") or hasattr(result, "output"):
            return result
        # `with_raw_response`: parse() is cached, so the user's own parse() gets this same
        # object. A `with_streaming_response` body is read by the application (deferred).
        legacy = sys.modules.get("openai._legacy_response")
        legacy_response = getattr(legacy, "LegacyAPIResponse", None)
        if legacy_response is not None and isinstance(result, legacy_response):
            return result.parse()
        return None

    def response_attributes(self, call: LLMCall, start: CallStart, response: Any) -> Attributes:
        kind, model, capture = start.kind, start.model, self.capture_content
        if kind == "chat":
            return chat.response_attributes(call, response, model, capture)
        if kind == "responses":
            return responses.response_attributes(call, response, model, capture)
        if kind == "completions":
            return chat.response_attributes(
                call, response, model, capture, chat.completion_messages
            )
        dimensions_known = type(start.details.kwargs.get("dimensions")) is int
        return _embeddings_response(call, response, model, dimensions_known)

    def accumulator(self, call: LLMCall, start: CallStart) -> StreamAccumulator:
        if start.kind == "responses":  # the Responses API always reports usage
            return responses.ResponsesStreamAccumulator(start.model, self.capture_content)
        reader = (
            chat.ChatChunkAccumulator if start.kind == "chat" else chat.CompletionChunkAccumulator
        )
        request = start.details.kwargs.get(_ASKED_USAGE[start.kind])
        return reader(start.model, self.capture_content, request)

    def answer_of(self, start: CallStart, error: BaseException) -> Any:
        # parse() raises these on a whole answer that stopped at max_tokens or at the content
        # filter: the answer, its usage included, is on the error (and billed).
        if start.kind == "chat" and type(error).__name__ in _ANSWERED_ERRORS:
            return getattr(error, "completion", None)
        return None

    def refused(self, start: CallStart, error: Exception) -> bool:
        """A server that does not know `stream_options` answers 400 or 422 naming it."""
        if getattr(error, "status_code", None) not in _REFUSAL_STATUSES:
            return False
        text = str(error)  # the client's message holds the server's error body
        if "stream_options" not in text and "include_usage" not in text:
            return False
        base_url = str(start.details.base_url)
        if base_url not in self.refusing_usage:
            self.refusing_usage.add(base_url)
            logger.info(
                "%s refused stream_options.include_usage: its streams are sent as the "
                "application asks, with estimated usage",
                base_url,
            )
        return True

    # -- the helpers' close(), not an LLM call

    def wrapper(self, kind: str, is_async: bool) -> Wrapper:
        if kind in (raw.PARSE, raw.CLOSE):
            return self.raw_responses.wrapper(kind, is_async)
        if kind != "helper_close":
            return super().wrapper(kind, is_async)
        if is_async:

            async def async_close(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
                try:
                    return await wrapped(*args, **kwargs)
                finally:
                    end_stream_early(getattr(instance, "_raw_stream", None))

            return async_close

        def close(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
            try:
                return wrapped(*args, **kwargs)
            finally:
                end_stream_early(getattr(instance, "_raw_stream", None))

        return close


class OpenAIInstrumentor(ClientInstrumentor):
    """Spans for the `openai` client (1.40 and later)."""

    wrappers = OpenAIWrappers
