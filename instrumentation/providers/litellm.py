"""LiteLLM instrumentation: `litellm.completion` and `litellm.acompletion`, plain and streamed.

LiteLLM answers in OpenAI's chat-completions shape whatever the provider behind it, so
the shared chat readers (`_chat_chunks`) read it. The span names the provider LiteLLM
routes to (`openai/gpt-4o` → provider `openai`, model `gpt-4o`).

One LLM call, one span: while a LiteLLM span is open it is the current LLM call, so
`should_trace()` is false for the `openai` (or any other Assay-instrumented) client that
LiteLLM calls underneath, and that client adds no second LLM span.

LiteLLM hands a stream's usage over on its final chunk: in `usage` when the application
asked for it (`stream_options`), else in the chunk's hidden parameters. Where the provider
sent none, LiteLLM counts the tokens itself: those counts are kept as an estimate
(`assay.usage.source = estimated`).

Importing `litellm` is slow (and by default fetches a price list over the network), so
instrumenting never imports it: the functions are patched when the application does.
"""

from __future__ import annotations

import functools
from typing import Any

from assay.instrumentation import semconv
from assay.instrumentation._spans import Attributes, LLMCall
from assay.instrumentation._streams import StreamAccumulator
from assay.instrumentation.providers import _chat_chunks as chat
from assay.instrumentation.providers import _messages as msg
from assay.instrumentation.providers._call import CallStart, CallWrappers, opening
from assay.instrumentation.providers._instrumentor import ClientInstrumentor, Target
from assay.instrumentation.providers._request import server_attributes

_TARGETS = (
    Target("litellm", "", ("completion",), "completion"),
    Target("litellm", "", ("acompletion",), "acompletion", is_async=True),
)

# LiteLLM's provider names → `gen_ai.provider.name`; others are passed on as LiteLLM spells them.
_PROVIDER_NAMES = {
    "openai": semconv.PROVIDER_OPENAI,
    "text-completion-openai": semconv.PROVIDER_OPENAI,
    "azure": semconv.PROVIDER_AZURE_OPENAI,
    "azure_text": semconv.PROVIDER_AZURE_OPENAI,
    "azure_ai": semconv.PROVIDER_AZURE_AI_INFERENCE,
    "anthropic": semconv.PROVIDER_ANTHROPIC,
    "bedrock": semconv.PROVIDER_AWS_BEDROCK,
    "vertex_ai": semconv.PROVIDER_GCP_VERTEX_AI,
    "vertex_ai_beta": semconv.PROVIDER_GCP_VERTEX_AI,
    "gemini": semconv.PROVIDER_GCP_GEMINI,
    "cohere": semconv.PROVIDER_COHERE,
    "cohere_chat": semconv.PROVIDER_COHERE,
    "mistral": semconv.PROVIDER_MISTRAL_AI,
    "groq": semconv.PROVIDER_GROQ,
    "deepseek": semconv.PROVIDER_DEEPSEEK,
    "xai": semconv.PROVIDER_X_AI,
    "perplexity": semconv.PROVIDER_PERPLEXITY,
    "watsonx": semconv.PROVIDER_IBM_WATSONX_AI,
    "together_ai": semconv.PROVIDER_TOGETHER_AI,
    "ollama": semconv.PROVIDER_OLLAMA,
    "ollama_chat": semconv.PROVIDER_OLLAMA,
}


@functools.lru_cache(maxsize=512)
def _route(model: str, custom_provider: str | None, api_base: str | None) -> tuple[str, str]:
    """(model without LiteLLM's routing prefix, GenAI provider name), as LiteLLM resolves it."""
    provider: str | None = custom_provider
    try:
        import litellm

        model, provider, _, _ = litellm.get_llm_provider(
            model=model, custom_llm_provider=custom_provider, api_base=api_base
        )
    except Exception:  # a model LiteLLM cannot route fails in the call itself, not here
        if provider is None and "/" in model:
            provider, model = model.split("/", 1)
    provider = provider or "unknown"
    return model, _PROVIDER_NAMES.get(provider, provider)


def _known(usage: Any) -> Any:
    """LiteLLM's usage, or None for its `UnreportedUsage` (zeros standing for none)."""
    return None if usage is None or type(usage).__name__ == "UnreportedUsage" else usage


class _LiteLLMChunks(chat.ChatChunkAccumulator):
    """LiteLLM's chunks: the chat format, with usage also handed over in the final chunk's
    `_hidden_params`. That dict is read at the end: LiteLLM updates it after the chunk.
    Where the provider sent no usage it holds `UnreportedUsage` at first and LiteLLM's own
    count of the tokens at the end, which is an estimate and flagged as one."""

    __slots__ = ("_counted", "_hidden")

    def __init__(self, request_model: str | None, capture: bool, request: Any = None) -> None:
        super().__init__(request_model, capture, request)
        self._hidden: dict[str, Any] | None = None
        self._counted = False  # the usage handed over is LiteLLM's count, not the provider's

    def add(self, chunk: Any) -> None:
        # LiteLLM streams a model's thinking as `delta.reasoning_content`, before its text.
        if self._capture:
            for choice in getattr(chunk, "choices", None) or ():
                reasoning = getattr(getattr(choice, "delta", None), "reasoning_content", None)
                if isinstance(reasoning, str) and reasoning:
                    self.choice(choice.index).add_reasoning(reasoning)
        super().add(chunk)
        hidden = getattr(chunk, "_hidden_params", None)
        if isinstance(hidden, dict) and "usage" in hidden:
            self._hidden = hidden
            self._counted = _known(hidden["usage"]) is None

    def _handed_over(self) -> Any:
        return _known(self._hidden.get("usage")) if self._hidden is not None else None

    def usage_handed_over(self) -> Any:
        return None if self._counted else self._handed_over()

    def add_estimate(self, call: LLMCall, attributes: Attributes) -> None:
        counted = self._handed_over() if self._counted else None
        if counted is None:
            super().add_estimate(call, attributes)
        else:
            chat.add_usage(call, attributes, self.model, counted, semconv.USAGE_SOURCE_ESTIMATED)


def _output_messages(choices: Any) -> list[Any]:
    """The chat format's output messages, each led by its `reasoning_content` (the thinking
    LiteLLM hands over from Anthropic, DeepSeek, Gemini and others)."""
    messages = chat.output_messages(choices)
    for choice, message in zip(choices, messages, strict=False):
        reasoning = getattr(getattr(choice, "message", None), "reasoning_content", None)
        if isinstance(reasoning, str) and reasoning:
            message["parts"].insert(0, msg.reasoning_part(reasoning))
    return messages


def _response_attributes(
    call: LLMCall, response: Any, request_model: str | None, capture: bool
) -> Attributes:
    return chat.response_attributes(call, response, request_model, capture, _output_messages)


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


class LiteLLMWrappers(CallWrappers):
    """Spans for `litellm.completion` / `acompletion`, in the chat-completions shape."""

    library = "litellm"
    targets = _TARGETS
    response_reader = staticmethod(_response_attributes)

    def describe(self, kind: str, instance: Any, args: Any, kwargs: Any) -> CallStart | None:
        given = kwargs.get("model", args[0] if args else None)
        if not isinstance(given, str):
            return None
        api_base = _text_or_none(kwargs.get("api_base")) or _text_or_none(kwargs.get("base_url"))
        model, provider = _route(given, _text_or_none(kwargs.get("custom_llm_provider")), api_base)
        stream = kwargs.get("stream") is True
        attributes = opening(semconv.OP_CHAT, provider, model, stream, server_attributes(api_base))
        chat.CHAT_PARAMETERS.read(kwargs, attributes)
        messages = kwargs.get("messages", args[1] if len(args) > 1 else None)
        self.add_content(attributes, lambda: chat.request_content(messages, kwargs.get("tools")))
        return CallStart(kind, semconv.OP_CHAT, provider, model, attributes, stream, messages)

    def accumulator(self, call: LLMCall, start: CallStart) -> StreamAccumulator:
        return _LiteLLMChunks(start.model, self.capture_content, start.details)

    def finish(self, call: LLMCall, start: CallStart, result: Any) -> Any:
        # LiteLLM's stream wrapper is iterable both ways: the function called says which.
        is_async = start.kind == "acompletion"
        if start.stream and hasattr(result, "__aiter__" if is_async else "__iter__"):
            return self.stream(call, start, result, is_async=is_async)
        if hasattr(result, "choices"):
            call.end(self.response_attributes(call, start, result))
        else:
            call.end()
        return result


class LiteLLMInstrumentor(ClientInstrumentor):
    """Spans for `litellm.completion` / `litellm.acompletion`; patched when litellm is imported."""

    wrappers = LiteLLMWrappers
