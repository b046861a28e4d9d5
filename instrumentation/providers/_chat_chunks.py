"""The OpenAI chat-completions format: requests, responses and streamed chunks, read once.

openai (chat and legacy completions), litellm (which answers every provider in this
shape) and mistralai (whose messages and chunks are the same shape) share these readers,
so a fix to the format lands once. Message content may be a string or a list of typed
parts; every part type any of those clients sends is read here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from assay.instrumentation import semconv
from assay.instrumentation._spans import Attributes, LLMCall, report_internal_error, to_json
from assay.instrumentation._streams import ResponseState
from assay.instrumentation.providers import _messages as msg
from assay.instrumentation.providers import _token_estimate as estimate
from assay.instrumentation.providers._call import (
    CallStart,
    CallWrappers,
    opening,
    response_identity,
)
from assay.instrumentation.providers._request import Parameters, request_model, server_attributes

# Sampling parameters of a chat request, by keyword. `max_completion_tokens` comes after
# `max_tokens` so that, when both are given, the newer name wins.
CHAT_NUMBERS = {
    "temperature": semconv.REQUEST_TEMPERATURE,
    "top_p": semconv.REQUEST_TOP_P,
    "frequency_penalty": semconv.REQUEST_FREQUENCY_PENALTY,
    "presence_penalty": semconv.REQUEST_PRESENCE_PENALTY,
}
CHAT_INTEGERS = {
    "max_tokens": semconv.REQUEST_MAX_TOKENS,
    "max_completion_tokens": semconv.REQUEST_MAX_TOKENS,
    "seed": semconv.REQUEST_SEED,
}
CHAT_PARAMETERS = Parameters(CHAT_NUMBERS, CHAT_INTEGERS, stop=("stop",), choices=("n",))


# --- request messages --------------------------------------------------------------------------


def content_parts(content: Any, parts: list[msg.Part]) -> None:
    """Append the parts of a message's content (a string, or a list of typed parts)."""
    if content is None:
        return
    if isinstance(content, str):
        if content:
            parts.append(msg.text_part(content))
        return
    if not isinstance(content, (list, tuple)):
        parts.append(msg.text_part(str(content)))
        return
    for part in content:
        if isinstance(part, str):
            parts.append(msg.text_part(part))
            continue
        kind = msg.field(part, "type")
        if kind == "text":
            parts.append(msg.text_part(msg.field(part, "text")))
        elif kind == "image_url":
            url = msg.field(part, "image_url")
            parts.append(msg.image_url_part(url if isinstance(url, str) else msg.field(url, "url")))
        elif kind == "input_audio":
            audio_format = msg.field(msg.field(part, "input_audio"), "format")
            parts.append(msg.blob_part("audio", f"audio/{audio_format}" if audio_format else None))
        elif kind == "file":
            file = msg.field(part, "file")
            parts.append(
                {
                    "type": "file",
                    "file_id": msg.field(file, "file_id"),
                    "name": msg.field(file, "filename"),
                }
            )
        elif kind == "refusal":
            parts.append({"type": "refusal", "content": msg.field(part, "refusal")})
        elif kind == "thinking":  # mistral: a list of text chunks; cohere: the text itself
            thinking = msg.field(part, "thinking")
            if isinstance(thinking, (list, tuple)):
                thinking = "".join(str(msg.field(piece, "text") or "") for piece in thinking)
            parts.append(msg.reasoning_part(thinking))
        elif kind == "document_url":  # mistral
            parts.append({"type": "uri", "uri": msg.field(part, "document_url")})
        elif kind == "document":  # cohere
            parts.append({"type": "document", "content": msg.field(part, "document")})
        else:
            parts.append({"type": str(kind)})


def tool_call(call: Any) -> msg.Part:
    """A requested tool call: a function with JSON arguments, or a custom tool's free input."""
    function = msg.field(call, "function")
    if function is not None:
        name, arguments = msg.field(function, "name"), msg.field(function, "arguments")
    else:
        custom = msg.field(call, "custom")
        name, arguments = msg.field(custom, "name"), msg.field(custom, "input")
    return msg.tool_call_part(msg.field(call, "id"), name, arguments)


def _tool_result(message: Any) -> Any:
    """A tool result's content: text as text, richer content (documents, images) as parts."""
    content = msg.field(message, "content")
    if not isinstance(content, (list, tuple)):
        return content
    converted: list[msg.Part] = []
    content_parts(content, converted)
    if all(part["type"] == "text" for part in converted):
        return "".join(str(part["content"] or "") for part in converted)
    return converted


def message_parts(message: Any) -> list[msg.Part]:
    """The parts of one chat message (a request dict or a client's message model)."""
    role = msg.field(message, "role")
    parts: list[msg.Part] = []
    if role == "tool":
        parts.append(
            msg.tool_response_part(msg.field(message, "tool_call_id"), _tool_result(message))
        )
    elif role == "function":  # the deprecated function-calling result
        parts.append(
            msg.tool_response_part(msg.field(message, "name"), msg.field(message, "content"))
        )
    else:
        plan = msg.field(message, "tool_plan")  # cohere states its plan before calling tools
        if plan:
            parts.append(msg.reasoning_part(plan))
        content_parts(msg.field(message, "content"), parts)
        for call in msg.field(message, "tool_calls") or ():
            parts.append(tool_call(call))
        function_call = msg.field(message, "function_call")
        if function_call is not None:
            parts.append(tool_call({"function": function_call}))
    return parts


def _message(message: Any) -> msg.Part:
    if type(message) is dict:
        content = message.get("content")
        # The common case, a plain text message, in one step.
        if type(content) is str and len(message) == 2:
            return {"role": message.get("role"), "parts": [msg.text_part(content)]}
    role = msg.field(message, "role")
    entry: msg.Part = {"role": role, "parts": message_parts(message)}
    name = msg.field(message, "name")
    if isinstance(name, str) and name and role != "function":
        entry["name"] = name
    return entry


def input_messages(messages: Any) -> list[msg.Part] | None:
    return msg.converted_messages(messages, _message)


def request_content(messages: Any, tools: Any) -> dict[str, Any]:
    """The content of a chat request, by attribute name."""
    return {
        semconv.INPUT_MESSAGES: input_messages(messages),
        semconv.TOOL_DEFINITIONS: msg.function_tool_definitions(tools),
    }


# --- responses ---------------------------------------------------------------------------------


# The fields `add_usage` reads of a usage object and of its two details objects.
_USAGE_FIELDS = (
    "prompt_tokens",
    "completion_tokens",
    "prompt_tokens_details",
    "prompt_token_details",
    "completion_tokens_details",
    "cache_creation_input_tokens",
)
_DETAIL_FIELDS = (
    "cached_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "audio_tokens",
    "image_tokens",
)


def add_usage(
    call: LLMCall,
    attributes: Attributes,
    model: str | None,
    usage: Any,
    source: str = semconv.USAGE_SOURCE_REPORTED,
) -> None:
    """Usage in the chat-completions shape: `prompt_tokens` include the cached ones.

    Cache reads are `prompt_tokens_details.cached_tokens`; cache writes are
    `prompt_tokens_details.cache_write_tokens` (OpenAI-compatible gateways) or, from
    LiteLLM for Anthropic models, `cache_creation_input_tokens`. Audio (OpenAI's audio
    models) and image tokens (LiteLLM, for providers that count them) are in the details.
    """
    counts = msg.fields(usage, _USAGE_FIELDS)
    prompt = msg.fields(
        counts.get("prompt_tokens_details") or counts.get("prompt_token_details"), _DETAIL_FIELDS
    )
    completion = msg.fields(counts.get("completion_tokens_details"), _DETAIL_FIELDS)
    # Some clients (mistralai) default a count the API left out to 0: trust only the ones sent.
    sent = getattr(usage, "model_fields_set", None)
    input_tokens = counts.get("prompt_tokens") if sent is None or "prompt_tokens" in sent else None
    output_tokens = (
        counts.get("completion_tokens") if sent is None or "completion_tokens" in sent else None
    )
    cache_write = msg.int_or_none(prompt.get("cache_write_tokens"))
    if cache_write is None:
        cache_write = msg.int_or_none(counts.get("cache_creation_input_tokens")) or None
    call.add_usage(
        attributes,
        model,
        msg.int_or_none(input_tokens),
        msg.int_or_none(output_tokens),
        cached_input_tokens=msg.int_or_none(prompt.get("cached_tokens")),
        cache_creation_input_tokens=cache_write,
        reasoning_output_tokens=msg.int_or_none(completion.get("reasoning_tokens")),
        audio_input_tokens=msg.int_or_none(prompt.get("audio_tokens")) or None,
        audio_output_tokens=msg.int_or_none(completion.get("audio_tokens")) or None,
        image_input_tokens=msg.int_or_none(prompt.get("image_tokens")) or None,
        image_output_tokens=msg.int_or_none(completion.get("image_tokens")) or None,
        source=source,
    )


def reason_text(reason: Any) -> str | None:
    """A finish reason as text: a string, or a client's enum of strings; anything else is None."""
    if isinstance(reason, str):
        return reason or None
    value = getattr(reason, "value", None)
    return value if isinstance(value, str) and value else None


def finish_reason(choice: Any) -> str | None:
    return reason_text(msg.field(choice, "finish_reason"))


_MESSAGE_FIELDS = ("role", "content", "refusal", "tool_calls", "function_call")


def output_messages(choices: Any) -> list[msg.Part]:
    """The answer's choices; a choice without a message (Azure's content filter) keeps its
    finish reason and no parts."""
    messages = []
    for choice in choices:
        message = msg.fields(msg.field(choice, "message"), _MESSAGE_FIELDS)
        parts: list[msg.Part] = []
        content_parts(message.get("content"), parts)
        refusal = message.get("refusal")
        if refusal:
            parts.append({"type": "refusal", "content": refusal})
        for call in message.get("tool_calls") or ():
            parts.append(tool_call(call))
        function_call = message.get("function_call")
        if function_call is not None:
            parts.append(tool_call({"function": function_call}))
        messages.append(msg.output_message(parts, finish_reason(choice), message.get("role")))
    return messages


def completion_messages(choices: Any) -> list[msg.Part]:
    """The choices of a legacy text completion."""
    return [
        msg.output_message([msg.text_part(msg.field(choice, "text"))], finish_reason(choice))
        for choice in choices
    ]


def response_attributes(
    call: LLMCall,
    response: Any,
    request_model: str | None,
    capture: bool,
    to_messages: Callable[[Any], list[msg.Part]] = output_messages,
    read_usage: Callable[[LLMCall, Attributes, str | None, Any], None] = add_usage,
) -> Attributes:
    """A chat completion (or, with `completion_messages`, a legacy completion)."""
    attributes: Attributes = {}
    model = response_identity(response, attributes)
    choices = msg.field(response, "choices")
    if not isinstance(choices, (list, tuple)):
        choices = ()
    reasons = tuple(reason for choice in choices if (reason := finish_reason(choice)))
    if reasons:
        attributes[semconv.RESPONSE_FINISH_REASONS] = reasons
    if capture:
        try:
            attributes[semconv.OUTPUT_MESSAGES] = to_json(to_messages(choices))
        except Exception:
            report_internal_error("converting chat output messages")
    read_usage(call, attributes, model or request_model, msg.field(response, "usage"))
    return attributes


# --- streams -----------------------------------------------------------------------------------


_NO_FIELDS: dict[str, Any] = {}  # an object without `__dict__`: every field read by attribute


class _ChoiceState:
    __slots__ = ("finish_reason", "parts", "refusal", "role", "text", "tool_calls")

    def __init__(self) -> None:
        self.role: str | None = None
        self.text: list[str] = []  # string deltas since the last structured part
        self.parts: list[msg.Part] = []  # structured content (reasoning, images) in order
        self.refusal: list[str] = []
        # by tool-call index: [id, name, argument fragments]
        self.tool_calls: dict[int, list[Any]] = {}
        self.finish_reason: str | None = None

    def add_content(self, content: Any) -> None:
        if isinstance(content, str):
            self.text.append(content)
            return
        if not isinstance(content, (list, tuple)):
            return  # a client's "unset" sentinel
        # Structured content (mistral's thinking, say): keep the order it arrived in.
        self._flush_text()
        new: list[msg.Part] = []
        content_parts(content, new)
        for part in new:
            msg.append_part(self.parts, part)

    def add_reasoning(self, text: str) -> None:
        """Streamed reasoning (`delta.reasoning_content`, LiteLLM's and DeepSeek's), in order."""
        self._flush_text()
        msg.append_part(self.parts, msg.reasoning_part(text))

    def _flush_text(self) -> None:
        if self.text:
            msg.append_part(self.parts, msg.text_part("".join(self.text)))
            self.text = []

    def add_tool_calls(self, tool_calls: Any) -> None:
        for position, call in enumerate(tool_calls):
            index = msg.field(call, "index")
            if type(index) is not int:
                index = position
            entry = self.tool_calls.get(index)
            if entry is None:
                entry = self.tool_calls[index] = [None, None, []]
            call_id = msg.field(call, "id")
            if call_id:
                entry[0] = call_id
            function = msg.field(call, "function")
            if function is not None:
                name = msg.field(function, "name")
                if name:
                    entry[1] = name
                arguments = msg.field(function, "arguments")
                if arguments:
                    entry[2].append(arguments if isinstance(arguments, str) else to_json(arguments))

    def message(self) -> msg.Part:
        self._flush_text()
        parts = self.parts
        refusal = "".join(self.refusal)
        if refusal:
            parts.append({"type": "refusal", "content": refusal})
        for _, (call_id, name, fragments) in sorted(self.tool_calls.items()):
            parts.append(msg.tool_call_part(call_id, name, "".join(fragments)))
        return msg.output_message(parts, self.finish_reason, self.role)


class ChatChunkAccumulator(ResponseState):
    """What a chat stream's span needs, gathered chunk by chunk without copying chunks.

    Also counts the characters streamed: when the stream reports no usage, the tokens are
    estimated from them and from the request's `messages` (`request`), and flagged so.
    """

    __slots__ = ("_choices", "_request", "_usage", "output_chars")

    def __init__(self, request_model: str | None, capture: bool, request: Any = None) -> None:
        super().__init__(request_model, capture)
        self._usage: Any = None
        self._choices: dict[int, _ChoiceState] = {}
        self._request = request  # the request's messages (or prompt), read only to estimate
        self.output_chars = 0

    @property
    def usage(self) -> Any:
        """The usage the stream reported (None until its usage chunk)."""
        return self._usage

    def choice(self, index: Any) -> _ChoiceState:
        """The state of the choice numbered `index`, new on its first chunk."""
        state = self._choices.get(index)
        if state is None:
            state = self._choices[index] = _ChoiceState()
        return state

    def note(self, response_id: Any, model: Any, usage: Any) -> None:
        """A chunk's id, model and usage: the first id and model stated, the last usage."""
        # Azure's first chunk (prompt filter results) has an empty id and model.
        if self._response_id is None and response_id:
            self._response_id = response_id
        if self._model is None and model:
            self._model = model
        if usage is not None:
            self._usage = usage

    def add(self, chunk: Any) -> None:
        # This runs per chunk, so it is one function: `note`, `choice` and the delta's reading
        # are written out here (a Python call costs about 430 instructions, all of this 6,000).
        if self._response_id is None and chunk.id:
            self._response_id = chunk.id
        if self._model is None and chunk.model:
            self._model = chunk.model
        # A pydantic model answers each attribute through its `__getattr__` hook (about 0.4 µs);
        # its fields are read from its `__dict__` at once. LiteLLM's chunks may leave `usage`
        # out until the last one: a chunk or choice without the field is read attribute-wise.
        try:
            values = chunk.__dict__
            usage, choices = values["usage"], values["choices"]
        except (AttributeError, KeyError):
            usage, choices = getattr(chunk, "usage", None), chunk.choices
        if usage is not None:
            self._usage = usage
        capture = self._capture
        for choice in choices or ():
            try:
                values = choice.__dict__
                index, reason, delta = values["index"], values["finish_reason"], values["delta"]
            except (AttributeError, KeyError):
                index, reason, delta = choice.index, choice.finish_reason, choice.delta
            state = self._choices.get(index)
            if state is None:
                state = self._choices[index] = _ChoiceState()
            if reason:
                state.finish_reason = reason_text(reason)
            if delta is None:
                continue
            try:
                values = delta.__dict__
                content, tool_calls = values["content"], values["tool_calls"]
            except (AttributeError, KeyError):
                values, content, tool_calls = _NO_FIELDS, delta.content, delta.tool_calls
            if content:
                if type(content) is str:
                    self.output_chars += len(content)
                    if capture:
                        state.text.append(content)
                elif capture:
                    state.add_content(content)
            if tool_calls and isinstance(tool_calls, (list, tuple)):
                self.output_chars += estimate.text_chars(tool_calls)
                if capture:
                    state.add_tool_calls(tool_calls)
            if not capture:
                continue
            if state.role is None:  # stated by the first chunk
                role = values.get("role") or getattr(delta, "role", None)
                if isinstance(role, str) and role:
                    state.role = role
            # LiteLLM's and mistral's deltas leave these out.
            try:
                refusal, function_call = values["refusal"], values["function_call"]
            except KeyError:
                refusal = getattr(delta, "refusal", None)
                function_call = getattr(delta, "function_call", None)
            if refusal:
                state.refusal.append(refusal)
            if function_call is not None:
                state.add_tool_calls(({"index": -1, "function": function_call},))

    def attributes(self, call: LLMCall) -> Attributes:
        attributes: Attributes = {}
        self.identity(attributes)
        choices = [self._choices[index] for index in sorted(self._choices)]
        reasons = tuple(state.finish_reason for state in choices if state.finish_reason)
        if reasons:
            attributes[semconv.RESPONSE_FINISH_REASONS] = reasons
        if self._capture:
            try:
                attributes[semconv.OUTPUT_MESSAGES] = to_json(
                    [state.message() for state in choices]
                )
            except Exception:
                report_internal_error("converting chat streamed messages")
        usage = self._usage if self._usage is not None else self.usage_handed_over()
        if usage is not None:
            add_usage(call, attributes, self.model, usage)
        else:
            self.add_estimate(call, attributes)
        return attributes

    def usage_handed_over(self) -> Any:
        """Usage the client hands over outside the chunks' `usage` (LiteLLM), else None."""
        return None

    def add_estimate(self, call: LLMCall, attributes: Attributes) -> None:
        """No usage came: tokens estimated from the text sent and streamed, flagged so."""
        output = estimate.tokens_of(self.output_chars) if self.output_chars else None
        input_tokens = estimate.input_tokens(self._request)
        call.add_usage(
            attributes, self.model, input_tokens, output, source=semconv.USAGE_SOURCE_ESTIMATED
        )


class CompletionChunkAccumulator(ChatChunkAccumulator):
    """A legacy completion stream: chat's, with each choice's `text` in place of a delta."""

    __slots__ = ()

    def add(self, chunk: Any) -> None:
        self.note(
            getattr(chunk, "id", None), getattr(chunk, "model", None), getattr(chunk, "usage", None)
        )
        for choice in chunk.choices or ():
            state = self.choice(choice.index)
            if choice.finish_reason:
                state.finish_reason = reason_text(choice.finish_reason)
            text = choice.text
            if text:
                self.output_chars += len(text)
                if self._capture:
                    state.text.append(text)


class UsageChunk:
    """Tells the extra chunk `stream_options.include_usage` adds, for an instrumentation that
    asked on the application's behalf and keeps it back: the chunk without choices that
    carries usage or comes after the answer finished (so also from a server whose chunks
    are malformed). Called on every chunk of one stream, in order."""

    __slots__ = ("_finished",)

    def __init__(self) -> None:
        self._finished = False

    def __call__(self, chunk: Any) -> bool:
        choices = chunk.choices
        if type(choices) is list and choices:
            if not self._finished:
                self._finished = any(msg.field(c, "finish_reason") for c in choices)
            return False
        return self._finished or getattr(chunk, "usage", None) is not None


class ChatWrappers(CallWrappers):
    """A client whose requests are chat-completions keyword arguments (`model`, `messages`,
    `tools`): a subclass names its `provider`, its `parameters` and where its `server_url` is."""

    provider: ClassVar[str]
    parameters: ClassVar[Parameters] = CHAT_PARAMETERS

    def server_url(self, instance: Any, kwargs: Any) -> Any:
        return None

    def describe(self, kind: str, instance: Any, args: Any, kwargs: Any) -> CallStart:
        model = request_model(kwargs)
        stream = kind == "stream"
        server = server_attributes(self.server_url(instance, kwargs))
        attributes = opening(semconv.OP_CHAT, self.provider, model, stream, server)
        self.parameters.read(kwargs, attributes)
        messages = kwargs.get("messages")
        self.add_content(attributes, lambda: request_content(messages, kwargs.get("tools")))
        # The request's messages: a chat-chunk accumulator estimates the input from them when
        # the stream reports no usage.
        return CallStart(kind, semconv.OP_CHAT, self.provider, model, attributes, stream, messages)
