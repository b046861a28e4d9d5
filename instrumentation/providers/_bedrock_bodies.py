"""Bedrock InvokeModel bodies: each model family's request, response and stream chunks.

InvokeModel takes and returns the model provider's own JSON. A family is recognised from
the request body and the model id; its readers fill the span like any other call:

- `anthropic`: the Messages API (`_anthropic_blocks`); `anthropic_text`: the older
  Claude text completions (`prompt` → `completion`).
- `nova`: Amazon Nova, the Converse shapes (`_converse`).
- `chat`: the chat-completions shape (Mistral Large, AI21 Jamba, OpenAI's open models).
- `titan`: Amazon Titan Text; `embed`: Titan and Cohere embeddings.
- `llama`: Meta Llama (`prompt` → `generation`, token counts in the body).
- `cohere_text`: Cohere Command (`prompt` → `generations`); `cohere_chat`: Command R
  (`message` → `text`).
- `mistral_text`: Mistral's text completions (`prompt` → `outputs`).
- `other`: anything else; tokens come from the response headers Bedrock adds.

Usage: the body's own counts where the family reports them, else Bedrock's
`x-amzn-bedrock-*-token-count` headers (plain calls) or the
`amazon-bedrock-invocationMetrics` of the last stream chunk.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from assay.instrumentation import semconv
from assay.instrumentation._spans import Attributes, LLMCall, report_internal_error, to_json
from assay.instrumentation.providers import _anthropic_blocks as blocks
from assay.instrumentation.providers import _chat_chunks as chat
from assay.instrumentation.providers import _converse as converse
from assay.instrumentation.providers import _messages as msg
from assay.instrumentation.providers._request import Parameters

INVOCATION_METRICS = "amazon-bedrock-invocationMetrics"
_INPUT_TOKENS_HEADER = "x-amzn-bedrock-input-token-count"
_OUTPUT_TOKENS_HEADER = "x-amzn-bedrock-output-token-count"

# The request parameters of the text families, by body key.
_TEXT_PARAMETERS = Parameters(
    {
        "temperature": semconv.REQUEST_TEMPERATURE,
        "top_p": semconv.REQUEST_TOP_P,
        "p": semconv.REQUEST_TOP_P,  # cohere
    },
    {
        "max_tokens": semconv.REQUEST_MAX_TOKENS,
        "max_tokens_to_sample": semconv.REQUEST_MAX_TOKENS,  # claude text completions
        "max_gen_len": semconv.REQUEST_MAX_TOKENS,  # llama
        "top_k": semconv.REQUEST_TOP_K,
        "k": semconv.REQUEST_TOP_K,  # cohere
        "seed": semconv.REQUEST_SEED,
    },
    stop=("stop_sequences", "stop", "stopSequences"),
    choices=("n", "num_generations"),
)
# In Titan's `textGenerationConfig`.
_TITAN_PARAMETERS = Parameters(
    {"temperature": semconv.REQUEST_TEMPERATURE, "topP": semconv.REQUEST_TOP_P},
    {"maxTokenCount": semconv.REQUEST_MAX_TOKENS},
    stop=("stopSequences",),
)


def family_of(model_id: str, body: Mapping[str, Any]) -> str:
    """The family of an InvokeModel request body (see the module's docstring)."""
    model = model_id.lower()
    messages = body.get("messages")
    if "anthropic_version" in body:
        return "anthropic"
    if "schemaVersion" in body or "inferenceConfig" in body:
        return "nova"
    if "inputText" in body:
        return "embed" if "embed" in model else "titan"
    if "texts" in body or "embed" in model:
        return "embed"
    if isinstance(messages, list):
        first = messages[0] if messages and isinstance(messages[0], dict) else {}
        content = first.get("content")
        if isinstance(content, list) and content and isinstance(content[0], dict):
            # typed blocks are Anthropic's; `{"text": ...}` blocks are Converse-shaped (Nova)
            return "anthropic" if "type" in content[0] else "nova"
        return "anthropic" if "anthropic." in model else "chat"
    if "message" in body and "cohere." in model:
        return "cohere_chat"
    if "prompt" in body:
        for marker, family in (
            ("anthropic.", "anthropic_text"),
            ("meta.", "llama"),
            ("cohere.", "cohere_text"),
            ("mistral.", "mistral_text"),
        ):
            if marker in model:
                return family
    return "other"


def operation_of(family: str) -> str:
    if family == "embed":
        return semconv.OP_EMBEDDINGS
    if family in ("anthropic", "nova", "chat", "cohere_chat"):
        return semconv.OP_CHAT
    if family == "other":
        return semconv.OP_CHAT
    return semconv.OP_TEXT_COMPLETION


# --- requests ----------------------------------------------------------------------------------


def _prompt_messages(prompt: Any) -> list[msg.Part] | None:
    if not isinstance(prompt, str) or not prompt:
        return None
    return [{"role": "user", "parts": [msg.text_part(prompt)]}]


def _cohere_chat_content(body: Mapping[str, Any]) -> dict[str, Any]:
    history = [
        {"role": str(turn.get("role", "")).lower(), "parts": [msg.text_part(turn.get("message"))]}
        for turn in body.get("chat_history") or ()
        if isinstance(turn, dict)
    ]
    message = body.get("message")
    if isinstance(message, str) and message:
        history.append({"role": "user", "parts": [msg.text_part(message)]})
    preamble = body.get("preamble")
    return {
        semconv.INPUT_MESSAGES: history,
        semconv.SYSTEM_INSTRUCTIONS: [msg.text_part(preamble)]
        if isinstance(preamble, str)
        else None,
    }


def request_attributes(family: str, body: Mapping[str, Any], attributes: Attributes) -> None:
    """The sampling parameters of a body of `family`."""
    if family == "anthropic":
        blocks.request_attributes(body, attributes)
    elif family == "nova":
        converse.INFERENCE.read(body.get("inferenceConfig"), attributes)
    elif family in ("titan", "embed"):
        _TITAN_PARAMETERS.read(body.get("textGenerationConfig"), attributes)
    elif family != "other":
        _TEXT_PARAMETERS.read(body, attributes)


def request_content(family: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """The content of a body of `family`, by attribute name."""
    if family == "anthropic":
        return blocks.request_content(body)
    if family == "nova":
        return converse.request_content(body)
    if family == "chat":
        return {
            semconv.INPUT_MESSAGES: chat.input_messages(body.get("messages")),
            semconv.TOOL_DEFINITIONS: msg.function_tool_definitions(body.get("tools")),
        }
    if family == "titan":
        return {semconv.INPUT_MESSAGES: _prompt_messages(body.get("inputText"))}
    if family == "cohere_chat":
        return _cohere_chat_content(body)
    if family in ("anthropic_text", "llama", "cohere_text", "mistral_text"):
        return {semconv.INPUT_MESSAGES: _prompt_messages(body.get("prompt"))}
    return {}


# --- responses ---------------------------------------------------------------------------------


@dataclass
class TextReply:
    """What a text family's answer (whole, or gathered from its stream) says."""

    texts: dict[int, list[str]] = field(default_factory=dict)  # by choice
    finish_reasons: dict[int, str] = field(default_factory=dict)
    response_id: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None

    def add_text(self, index: int, text: Any) -> None:
        if isinstance(text, str) and text:
            self.texts.setdefault(index, []).append(text)

    def finish(self, index: int, reason: Any) -> None:
        if isinstance(reason, str) and reason:
            self.finish_reasons[index] = reason

    def counts(self, input_tokens: Any, output_tokens: Any) -> None:
        """Take the counts given; a count not given keeps the one known before."""
        if type(input_tokens) is int:
            self.input_tokens = input_tokens
        if type(output_tokens) is int:
            self.output_tokens = output_tokens

    def attributes(self, call: LLMCall, model: str | None, capture: bool) -> Attributes:
        attributes: Attributes = {}
        if self.response_id:
            attributes[semconv.RESPONSE_ID] = self.response_id
        indexes = sorted(set(self.texts) | set(self.finish_reasons))
        reasons = tuple(self.finish_reasons[i] for i in indexes if i in self.finish_reasons)
        if reasons:
            attributes[semconv.RESPONSE_FINISH_REASONS] = reasons
        if capture:
            try:
                messages = [
                    msg.output_message(
                        [msg.text_part("".join(self.texts.get(i, ())))], self.finish_reasons.get(i)
                    )
                    for i in indexes
                ]
                attributes[semconv.OUTPUT_MESSAGES] = to_json(messages)
            except Exception:
                report_internal_error("converting bedrock output messages")
        call.add_usage(attributes, model, self.input_tokens, self.output_tokens)
        return attributes


@dataclass(frozen=True)
class TextShape:
    """Where a text family's body (or stream chunk) keeps its answer."""

    choices: str | None  # the list of choices; None: the body is the one choice
    text: str
    finish: str
    response_id: str | None = None
    input_tokens: str | None = None  # in the body
    output_tokens: str | None = None  # in each choice


_SHAPES = {
    "titan": TextShape(
        "results", "outputText", "completionReason", None, "inputTextTokenCount", "tokenCount"
    ),
    "llama": TextShape(
        None, "generation", "stop_reason", None, "prompt_token_count", "generation_token_count"
    ),
    "anthropic_text": TextShape(None, "completion", "stop_reason", "id"),
    "cohere_text": TextShape("generations", "text", "finish_reason", "id"),
    "cohere_chat": TextShape(None, "text", "finish_reason", "response_id"),
    "mistral_text": TextShape("outputs", "text", "stop_reason"),
}
# Stream chunks: one choice per chunk (its `index` says which) where bodies hold a list.
_CHUNK_SHAPES = {
    **_SHAPES,
    "titan": TextShape(None, "outputText", "completionReason"),
    "cohere_text": TextShape(None, "text", "finish_reason"),
    # Command R streams events: text in `text-generation`, the reason in `stream-end`.
    "cohere_chat": TextShape(None, "text", "finish_reason"),
    "llama": TextShape(None, "generation", "stop_reason"),
}


def read_text(shape: TextShape, body: Mapping[str, Any], reply: TextReply) -> None:
    """Add what `body` (a whole answer or one stream chunk) says to `reply`."""
    choices = body.get(shape.choices) if shape.choices else [body]
    output_tokens = None
    for position, choice in enumerate(choices if isinstance(choices, list) else ()):
        if not isinstance(choice, dict):
            continue
        index = choice.get("index")
        index = index if type(index) is int else position
        reply.add_text(index, choice.get(shape.text))
        reply.finish(index, choice.get(shape.finish))
        count = msg.int_or_none(choice.get(shape.output_tokens)) if shape.output_tokens else None
        if count is not None:
            output_tokens = (output_tokens or 0) + count
    response_id = body.get(shape.response_id) if shape.response_id else None
    if isinstance(response_id, str) and response_id:
        reply.response_id = response_id
    input_tokens = body.get(shape.input_tokens) if shape.input_tokens else None
    reply.counts(input_tokens, output_tokens)


def _header_tokens(headers: Any, name: str) -> int | None:
    value = headers.get(name) if isinstance(headers, dict) else None
    return int(value) if isinstance(value, str) and value.isdigit() else None


def response_attributes(
    call: LLMCall,
    family: str,
    model: str | None,
    body: Mapping[str, Any],
    headers: Any,
    capture: bool,
) -> Attributes:
    """The span's attributes from an InvokeModel response body and its HTTP headers."""
    if family == "anthropic":
        return blocks.response_attributes(call, body, model, capture)
    if family == "nova":
        return converse.response_attributes(call, body, model, capture)
    if family == "chat":
        return chat.response_attributes(call, body, model, capture)
    header_input = _header_tokens(headers, _INPUT_TOKENS_HEADER)
    header_output = _header_tokens(headers, _OUTPUT_TOKENS_HEADER)
    if family == "embed":
        attributes: Attributes = {}
        vector = body.get("embedding")
        vectors = body.get("embeddings")
        if not isinstance(vector, list) and isinstance(vectors, list) and vectors:
            vector = vectors[0] if isinstance(vectors[0], list) else None
        if isinstance(vector, list):
            attributes[semconv.EMBEDDINGS_DIMENSION_COUNT] = len(vector)
        if header_input is None:
            header_input = msg.int_or_none(body.get("inputTextTokenCount"))
        call.add_usage(attributes, model, header_input, None)
        return attributes
    reply = TextReply()
    shape = _SHAPES.get(family)
    if shape is not None:
        read_text(shape, body, reply)
    # The headers count what was billed; a body's own counts stand in when they are missing.
    reply.counts(header_input, header_output)
    return reply.attributes(call, model, capture and shape is not None)


# --- streams -----------------------------------------------------------------------------------


class InvokeChunks:
    """What an InvokeModelWithResponseStream span needs: JSON chunks in the family's format."""

    def __init__(self, family: str, model: str | None, capture: bool) -> None:
        self._family = family
        self._model = model
        self._capture = capture
        self._reply = TextReply()
        self._messages: blocks.MessageEvents | None = None
        self._converse: converse.ConverseEvents | None = None
        self._metrics: tuple[int | None, int | None] | None = None
        if family == "anthropic":
            self._messages = blocks.MessageEvents(model, capture)
        elif family == "nova":
            self._converse = converse.ConverseEvents(capture)
        self._shape = _CHUNK_SHAPES.get(family)

    def add(self, chunk: Mapping[str, Any]) -> None:
        if self._messages is not None:
            self._messages.add_json(chunk)
        elif self._converse is not None:
            self._converse.add(chunk)
        elif self._shape is not None:
            read_text(self._shape, chunk, self._reply)
        metrics = chunk.get(INVOCATION_METRICS)
        if isinstance(metrics, dict):
            self._metrics = (
                msg.int_or_none(metrics.get("inputTokenCount")),
                msg.int_or_none(metrics.get("outputTokenCount")),
            )

    def attributes(self, call: LLMCall) -> Attributes:
        if self._messages is not None:
            attributes = self._messages.attributes(call)
            if semconv.USAGE_INPUT_TOKENS not in attributes and self._metrics is not None:
                call.add_usage(attributes, self._model, *self._metrics)
            return attributes
        if self._converse is not None:
            if self._converse.usage is None and self._metrics is not None:
                self._converse.usage = (*self._metrics, None, None)
            return self._converse.attributes(call, self._model)
        if self._metrics is not None:
            self._reply.counts(*self._metrics)
        return self._reply.attributes(call, self._model, self._capture and self._shape is not None)
