"""Mistral AI client instrumentation (`mistralai`): chat completions, sync and async, streamed.

`MistralInstrumentor` patches `Chat.complete`, `complete_async`, `stream` and
`stream_async` (in `mistralai.client.chat` from 2.x, `mistralai.chat` in 1.x); `parse`
calls `complete` and so gets its span. Mistral's messages, responses and stream chunks
are the chat-completions shape, read by `_chat_chunks`.

The client fills absent usage counts with 0: only the counts the API actually sent
(`model_fields_set`) are recorded, so missing usage is stated as unknown, never as 0.
"""

from __future__ import annotations

from typing import Any

from assay.instrumentation import semconv
from assay.instrumentation._spans import LLMCall
from assay.instrumentation._streams import StreamAccumulator
from assay.instrumentation.providers import _chat_chunks as chat
from assay.instrumentation.providers._call import CallStart
from assay.instrumentation.providers._instrumentor import ClientInstrumentor, Target
from assay.instrumentation.providers._request import Parameters

_TARGETS = tuple(
    Target(module, "Chat", (method,), kind, is_async)
    for module in ("mistralai.client.chat", "mistralai.chat")
    for method, kind, is_async in (
        ("complete", "chat", False),
        ("complete_async", "chat", True),
        ("stream", "stream", False),
        ("stream_async", "stream", True),
    )
)


class _EventAccumulator(chat.ChatChunkAccumulator):
    """Mistral's stream events carry the chat-completion chunk as `data`."""

    __slots__ = ()

    def add(self, chunk: Any) -> None:
        super().add(chunk.data)


class MistralWrappers(chat.ChatWrappers):
    """Spans for the mistralai client's chat calls."""

    library = "mistralai"
    targets = _TARGETS
    provider = semconv.PROVIDER_MISTRAL_AI
    # The chat format's, with Mistral's names for the seed and top-k.
    parameters = Parameters(
        chat.CHAT_NUMBERS,
        {**chat.CHAT_INTEGERS, "random_seed": semconv.REQUEST_SEED, "top_k": semconv.REQUEST_TOP_K},
        stop=("stop",),
        choices=("n",),
    )
    response_reader = staticmethod(chat.response_attributes)

    def accumulator(self, call: LLMCall, start: CallStart) -> StreamAccumulator:
        return _EventAccumulator(start.model, self.capture_content, start.details)

    def server_url(self, instance: Any, kwargs: Any) -> Any:
        url = kwargs.get("server_url")
        if isinstance(url, str):
            return url
        configuration = getattr(instance, "sdk_configuration", None)
        details = getattr(configuration, "get_server_details", None)
        return details()[0] if callable(details) else None


class MistralInstrumentor(ClientInstrumentor):
    """Spans for the `mistralai` client's chat completions, sync and async, plain and streamed."""

    wrappers = MistralWrappers
