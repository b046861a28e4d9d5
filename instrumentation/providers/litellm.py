"""LiteLLM instrumentation: `litellm.completion` and `litellm.acompletion`, plain and streamed.

LiteLLM answers in OpenAI's shapes whatever the provider behind it, so the request and
response readers of the OpenAI instrumentation are reused as they are. The span names
the provider LiteLLM routes to (`openai/gpt-4o` → provider `openai`, model `gpt-4o`).

One LLM call, one span: while a LiteLLM span is open it is the current LLM call, so
`should_trace()` is false for the `openai` (or any other Assay-instrumented) client that
LiteLLM calls underneath, and that client adds no second LLM span.

Importing `litellm` is slow (and by default fetches a price list over the network), so
instrumenting never imports it: the functions are patched when the application does.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Collection, Mapping
from types import ModuleType
from typing import Any

import wrapt
from opentelemetry import trace
from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
    BaseInstrumentor,
)
from opentelemetry.instrumentation.utils import unwrap
from opentelemetry.semconv._incubating.attributes.gen_ai_attributes import (
    GenAiProviderNameValues as _Providers,
)

from assay.instrumentation import config, semconv
from assay.instrumentation._spans import (
    Attributes,
    LLMCall,
    report_internal_error,
    should_trace,
    start_call,
)
from assay.instrumentation._streams import AsyncStreamProxy, SyncStreamProxy
from assay.instrumentation.providers._common import run, run_async, tracer_version
from assay.instrumentation.providers._wrapping import server_attributes
from assay.instrumentation.providers.openai import (
    _chat_request_attributes,
    _chat_response_attributes,
    _ChatStreamAccumulator,
)
from assay.instrumentation.providers.package import LITELLM_INSTRUMENTS

_FUNCTIONS = (("completion", "completion"), ("acompletion", "async_completion"))

# LiteLLM's provider names → `gen_ai.provider.name`; others are passed on as LiteLLM spells them.
_PROVIDER_NAMES = {
    "openai": semconv.PROVIDER_OPENAI,
    "text-completion-openai": semconv.PROVIDER_OPENAI,
    "azure": semconv.PROVIDER_AZURE_OPENAI,
    "azure_text": semconv.PROVIDER_AZURE_OPENAI,
    "azure_ai": _Providers.AZURE_AI_INFERENCE.value,
    "anthropic": semconv.PROVIDER_ANTHROPIC,
    "bedrock": semconv.PROVIDER_AWS_BEDROCK,
    "vertex_ai": _Providers.GCP_VERTEX_AI.value,
    "vertex_ai_beta": _Providers.GCP_VERTEX_AI.value,
    "gemini": _Providers.GCP_GEMINI.value,
    "cohere": _Providers.COHERE.value,
    "cohere_chat": _Providers.COHERE.value,
    "mistral": _Providers.MISTRAL_AI.value,
    "groq": _Providers.GROQ.value,
    "deepseek": _Providers.DEEPSEEK.value,
    "xai": _Providers.X_AI.value,
    "perplexity": _Providers.PERPLEXITY.value,
    "watsonx": _Providers.IBM_WATSONX_AI.value,
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


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


class _LiteLLMWrappers:
    """The wrapt wrappers, bound to one tracer and capture setting."""

    def __init__(self, tracer: trace.Tracer, capture_content: bool) -> None:
        self.tracer = tracer
        self.capture_content = capture_content
        self.enabled = True  # functions imported before `uninstrument` keep the wrapper

    def _start(self, args: Any, kwargs: Mapping[str, Any]) -> tuple[LLMCall, str] | None:
        try:
            if not (self.enabled and should_trace()):
                return None
            given = kwargs.get("model", args[0] if args else None)
            if not isinstance(given, str):
                return None
            api_base = _text_or_none(kwargs.get("api_base")) or _text_or_none(
                kwargs.get("base_url")
            )
            model, provider = _route(
                given, _text_or_none(kwargs.get("custom_llm_provider")), api_base
            )
            attributes: Attributes = {
                semconv.OPERATION_NAME: semconv.OP_CHAT,
                semconv.PROVIDER_NAME: provider,
                semconv.REQUEST_MODEL: model,
                semconv.REQUEST_STREAM: kwargs.get("stream") is True,
            }
            server_attributes(api_base, attributes)
            request = kwargs
            if "messages" not in kwargs and len(args) > 1:
                request = {**kwargs, "messages": args[1]}
            _chat_request_attributes(request, attributes, self.capture_content)
        except Exception:
            report_internal_error("reading a litellm request")
            return None
        call = start_call(self.tracer, semconv.OP_CHAT, provider, model, attributes)
        return None if call is None else (call, model)

    def _finish(self, call: LLMCall, model: str, result: Any, stream: bool, sync: bool) -> Any:
        try:
            if stream and hasattr(result, "__iter__" if sync else "__aiter__"):
                accumulator = _ChatStreamAccumulator(model, self.capture_content)
                proxy = SyncStreamProxy if sync else AsyncStreamProxy
                return proxy(result, call, accumulator)
            if hasattr(result, "choices"):
                call.end(_chat_response_attributes(call, result, model, self.capture_content))
            else:
                call.end()
        except Exception:
            report_internal_error("reading a litellm response")
            call.end()
        return result

    # -- the wrappers themselves: the user's call runs exactly once, outside Assay's try blocks

    def completion(self, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        started = self._start(args, kwargs)
        if started is None:
            return wrapped(*args, **kwargs)
        call, model = started
        result = run(call, wrapped, args, kwargs)
        return self._finish(call, model, result, kwargs.get("stream") is True, sync=True)

    async def async_completion(self, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        started = self._start(args, kwargs)
        if started is None:
            return await wrapped(*args, **kwargs)
        call, model = started
        result = await run_async(call, wrapped, args, kwargs)
        return self._finish(call, model, result, kwargs.get("stream") is True, sync=False)


class LiteLLMInstrumentor(BaseInstrumentor):
    """Spans for `litellm.completion` / `litellm.acompletion`; patched when litellm is imported.

    `instrument(tracer_provider=..., capture_content=...)` as for `OpenAIInstrumentor`.
    """

    def __init__(self) -> None:
        if not hasattr(self, "_wrappers"):
            self._wrappers: _LiteLLMWrappers | None = None
            self._patched: ModuleType | None = None
            self._hook_registered = False

    def instrumentation_dependencies(self) -> Collection[str]:
        return LITELLM_INSTRUMENTS

    def _instrument(self, **kwargs: Any) -> None:
        capture = kwargs.get("capture_content")
        if capture is None:
            capture = config.capture_content_from_env()
        tracer = trace.get_tracer(
            "assay.instrumentation.litellm",
            tracer_version(),
            tracer_provider=kwargs.get("tracer_provider"),
        )
        self._wrappers = _LiteLLMWrappers(tracer, bool(capture))
        module = sys.modules.get("litellm")
        if module is not None:
            self._patch(module)
        elif not self._hook_registered:
            # Runs when the application imports litellm; a hook cannot be removed, so it
            # checks whether instrumentation is still on.
            wrapt.register_post_import_hook(self._patch_if_instrumented, "litellm")
            self._hook_registered = True

    def _patch_if_instrumented(self, module: ModuleType) -> None:
        if self._wrappers is not None and self._patched is None:
            self._patch(module)

    def _patch(self, module: ModuleType) -> None:
        wrappers = self._wrappers
        assert wrappers is not None
        for name, kind in _FUNCTIONS:
            if callable(getattr(module, name, None)):
                wrapt.wrap_function_wrapper(module, name, getattr(wrappers, kind))
        self._patched = module

    def _uninstrument(self, **kwargs: Any) -> None:
        if self._wrappers is not None:
            self._wrappers.enabled = False
            self._wrappers = None
        module = self._patched
        if module is not None:
            for name, _ in _FUNCTIONS:
                unwrap(module, name)
            self._patched = None
