"""Amazon Bedrock runtime instrumentation (boto3/botocore): Converse and InvokeModel, streamed too.

`BedrockInstrumentor` wraps `botocore.client.BaseClient._make_api_call`, the one method
every boto3 client call goes through, so clients created before or after instrumenting
are covered alike. The wrapper looks at the operation name first (a set lookup) and
passes every other AWS call through untouched; for `Converse`, `ConverseStream`,
`InvokeModel` and `InvokeModelWithResponseStream` of `bedrock-runtime` it makes one
CLIENT span through `_spans`. Streams (`response["stream"]`, `response["body"]`) are
wrapped by `_streams`. The InvokeModel body is read once, parsed, and handed back to
the caller as a fresh `StreamingBody` holding the same bytes.

Token counts follow the GenAI convention used by `pricing`: input tokens include cache
reads and writes, which Bedrock (like Anthropic) reports apart from `inputTokens`.
A failed call records the AWS error code (`ThrottlingException`, ...) as `error.type`.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Collection, Mapping
from typing import Any

import wrapt
from opentelemetry import trace
from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
    BaseInstrumentor,
)
from opentelemetry.instrumentation.utils import unwrap

from assay.instrumentation import config, semconv
from assay.instrumentation._spans import (
    Attributes,
    LLMCall,
    report_internal_error,
    should_trace,
    start_call,
    to_json,
)
from assay.instrumentation._streams import SyncStreamProxy
from assay.instrumentation.providers._common import output_message, tracer_version
from assay.instrumentation.providers.package import BEDROCK_INSTRUMENTS

_SERVICE = "bedrock-runtime"
_CONVERSE = "Converse"
_CONVERSE_STREAM = "ConverseStream"
_INVOKE = "InvokeModel"
_INVOKE_STREAM = "InvokeModelWithResponseStream"
_OPERATIONS = frozenset({_CONVERSE, _CONVERSE_STREAM, _INVOKE, _INVOKE_STREAM})

_INPUT_TOKENS_HEADER = "x-amzn-bedrock-input-token-count"
_OUTPUT_TOKENS_HEADER = "x-amzn-bedrock-output-token-count"
_INVOCATION_METRICS = "amazon-bedrock-invocationMetrics"

# Converse's inferenceConfig and the invoke bodies' parameter names, per family.
_CONVERSE_PARAMS = (
    ("maxTokens", semconv.REQUEST_MAX_TOKENS),
    ("temperature", semconv.REQUEST_TEMPERATURE),
    ("topP", semconv.REQUEST_TOP_P),
)
_ANTHROPIC_PARAMS = (
    ("max_tokens", semconv.REQUEST_MAX_TOKENS),
    ("temperature", semconv.REQUEST_TEMPERATURE),
    ("top_p", semconv.REQUEST_TOP_P),
)
_NOVA_PARAMS = (
    ("max_new_tokens", semconv.REQUEST_MAX_TOKENS),
    *_CONVERSE_PARAMS,
)
_TITAN_PARAMS = (
    ("maxTokenCount", semconv.REQUEST_MAX_TOKENS),
    ("temperature", semconv.REQUEST_TEMPERATURE),
    ("topP", semconv.REQUEST_TOP_P),
)
_NUMBER = (int, float)


def aws_error_code(error: BaseException) -> str | None:
    """The AWS error code botocore's `ClientError` carries (`ThrottlingException`, ...)."""
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        code = (response.get("Error") or {}).get("Code")
        if isinstance(code, str) and code:
            return code
    return None


def _add_params(source: Any, names: tuple[tuple[str, str], ...], attributes: Attributes) -> None:
    if not isinstance(source, dict):
        return
    for key, name in names:
        value = source.get(key)
        if type(value) in _NUMBER:
            attributes[name] = value


def _add_stop_sequences(value: Any, attributes: Attributes) -> None:
    if isinstance(value, (list, tuple)) and value:
        attributes[semconv.REQUEST_STOP_SEQUENCES] = tuple(str(s) for s in value)


# --- content blocks in the GenAI message shape -------------------------------------------------


def _converse_part(block: Any) -> dict[str, Any] | None:
    """One Converse (or Nova) content block as a GenAI part; None for cache points."""
    if not isinstance(block, dict):
        return {"type": "text", "content": str(block)}
    if "text" in block:
        return {"type": "text", "content": block["text"]}
    if "toolUse" in block:
        tool = block["toolUse"]
        return {
            "type": "tool_call",
            "id": tool.get("toolUseId"),
            "name": tool.get("name"),
            "arguments": tool.get("input"),
        }
    if "toolResult" in block:
        result = block["toolResult"]
        response = [
            part.get("text", part.get("json")) if isinstance(part, dict) else part
            for part in result.get("content") or ()
        ]
        return {
            "type": "tool_call_response",
            "id": result.get("toolUseId"),
            "response": response[0] if len(response) == 1 else response,
        }
    if "cachePoint" in block:
        return None
    for modality in ("image", "video", "audio"):
        if modality in block:
            # Inline media can be megabytes: keep its type, not its bytes.
            media_format = (block[modality] or {}).get("format")
            return {"type": "blob", "modality": modality, "mime_type": f"{modality}/{media_format}"}
    if "document" in block:
        document = block["document"] or {}
        return {"type": "file", "name": document.get("name"), "format": document.get("format")}
    if "reasoningContent" in block:
        reasoning = (block["reasoningContent"] or {}).get("reasoningText") or {}
        return {"type": "reasoning", "content": reasoning.get("text")}
    return {"type": next(iter(block), "unknown")}


def _converse_parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "content": content}]
    parts = []
    for block in content or ():
        part = _converse_part(block)
        if part is not None:
            parts.append(part)
    return parts


def _converse_messages(messages: Any) -> list[dict[str, Any]] | None:
    # Only a list or tuple is read: iterating anything else could consume the user's request.
    if not isinstance(messages, (list, tuple)):
        return None
    return [
        {"role": message.get("role"), "parts": _converse_parts(message.get("content"))}
        for message in messages
        if isinstance(message, dict)
    ]


def _anthropic_part(block: Any) -> dict[str, Any]:
    if not isinstance(block, dict):
        return {"type": "text", "content": str(block)}
    kind = block.get("type")
    if kind == "text":
        return {"type": "text", "content": block.get("text")}
    if kind == "tool_use":
        return {
            "type": "tool_call",
            "id": block.get("id"),
            "name": block.get("name"),
            "arguments": block.get("input"),
        }
    if kind == "tool_result":
        return {
            "type": "tool_call_response",
            "id": block.get("tool_use_id"),
            "response": block.get("content"),
        }
    if kind == "image":
        source = block.get("source") or {}
        return {"type": "blob", "modality": "image", "mime_type": source.get("media_type")}
    if kind in ("thinking", "redacted_thinking"):
        return {"type": "reasoning", "content": block.get("thinking")}
    return {"type": str(kind)}


def _anthropic_parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "content": content}]
    return [_anthropic_part(block) for block in content or ()]


def _anthropic_messages(messages: Any) -> list[dict[str, Any]] | None:
    if not isinstance(messages, (list, tuple)):
        return None
    return [
        {"role": message.get("role"), "parts": _anthropic_parts(message.get("content"))}
        for message in messages
        if isinstance(message, dict)
    ]


def _converse_tools(tool_config: Any) -> list[dict[str, Any]] | None:
    if not isinstance(tool_config, dict):
        return None
    definitions = []
    for tool in tool_config.get("tools") or ():
        spec = tool.get("toolSpec") if isinstance(tool, dict) else None
        if spec is None:
            continue  # a cache point between tools
        definition: dict[str, Any] = {"type": "function", "name": spec.get("name")}
        if spec.get("description"):
            definition["description"] = spec["description"]
        schema = (spec.get("inputSchema") or {}).get("json")
        if schema is not None:
            definition["parameters"] = schema
        definitions.append(definition)
    return definitions


def _anthropic_tools(tools: Any) -> list[dict[str, Any]] | None:
    if not isinstance(tools, (list, tuple)):
        return None
    definitions = []
    for tool in tools:
        if not isinstance(tool, dict):
            continue
        definition: dict[str, Any] = {"type": "function", "name": tool.get("name")}
        if tool.get("description"):
            definition["description"] = tool["description"]
        if tool.get("input_schema") is not None:
            definition["parameters"] = tool["input_schema"]
        definitions.append(definition)
    return definitions


def _parsed_arguments(fragments: list[str]) -> Any:
    text = "".join(fragments)
    try:
        return json.loads(text) if text else {}
    except ValueError:
        return text  # a stream cut short: keep what arrived


# --- usage -------------------------------------------------------------------------------------


def _int_or_none(value: Any) -> int | None:
    return value if type(value) is int else None


def _add_bedrock_usage(
    call: LLMCall,
    attributes: Attributes,
    model: str | None,
    uncached_input: int | None,
    output: int | None,
    cache_read: int | None = None,
    cache_write: int | None = None,
) -> None:
    """Usage as Bedrock and Anthropic count it (cache apart from input), in GenAI terms."""
    input_tokens = uncached_input
    if input_tokens is not None:
        input_tokens += (cache_read or 0) + (cache_write or 0)
    call.add_usage(
        attributes,
        model,
        input_tokens,
        output,
        cached_input_tokens=cache_read,
        cache_creation_input_tokens=cache_write,
    )


def _add_converse_usage(
    call: LLMCall, attributes: Attributes, model: str | None, usage: Any
) -> None:
    if not isinstance(usage, dict):
        call.add_usage(attributes, model, None, None)
        return
    _add_bedrock_usage(
        call,
        attributes,
        model,
        _int_or_none(usage.get("inputTokens")),
        _int_or_none(usage.get("outputTokens")),
        _int_or_none(usage.get("cacheReadInputTokens")),
        _int_or_none(usage.get("cacheWriteInputTokens")),
    )


# --- InvokeModel bodies: one reader per model family -------------------------------------------


def _family(model_id: str, body: dict[str, Any]) -> str:
    """`anthropic`, `nova` (Converse-shaped), `titan` (text), `embed`, or `other`."""
    if "anthropic_version" in body:
        return "anthropic"
    if "schemaVersion" in body or "inferenceConfig" in body:
        return "nova"
    if "inputText" in body:
        return "embed" if "embed" in model_id.lower() else "titan"
    messages = body.get("messages")
    if isinstance(messages, list) and messages and isinstance(messages[0], dict):
        content = messages[0].get("content")
        if isinstance(content, list) and content and isinstance(content[0], dict):
            return "anthropic" if "type" in content[0] else "nova"
        return "anthropic"
    return "other"


_FAMILY_OPERATIONS = {
    "anthropic": semconv.OP_CHAT,
    "nova": semconv.OP_CHAT,
    "titan": semconv.OP_TEXT_COMPLETION,
    "embed": semconv.OP_EMBEDDINGS,
    "other": semconv.OP_CHAT,
}


def _invoke_request_attributes(
    family: str, body: dict[str, Any], attributes: Attributes, capture: bool
) -> None:
    if family == "anthropic":
        _add_params(body, _ANTHROPIC_PARAMS, attributes)
        _add_stop_sequences(body.get("stop_sequences"), attributes)
        if capture:
            messages = _anthropic_messages(body.get("messages"))
            if messages is not None:
                attributes[semconv.INPUT_MESSAGES] = to_json(messages)
            system = body.get("system")
            if system:
                attributes[semconv.SYSTEM_INSTRUCTIONS] = to_json(_anthropic_parts(system))
            tools = _anthropic_tools(body.get("tools"))
            if tools:
                attributes[semconv.TOOL_DEFINITIONS] = to_json(tools)
    elif family == "nova":
        inference = body.get("inferenceConfig")
        _add_params(inference, _NOVA_PARAMS, attributes)
        if isinstance(inference, dict):
            _add_stop_sequences(inference.get("stopSequences"), attributes)
        if capture:
            _add_converse_content(body, attributes)
    elif family in ("titan", "embed"):
        generation = body.get("textGenerationConfig")
        _add_params(generation, _TITAN_PARAMS, attributes)
        if isinstance(generation, dict):
            _add_stop_sequences(generation.get("stopSequences"), attributes)
        if capture and family == "titan":
            prompt = [
                {"role": "user", "parts": [{"type": "text", "content": body.get("inputText")}]}
            ]
            attributes[semconv.INPUT_MESSAGES] = to_json(prompt)


def _add_converse_content(request: Mapping[str, Any], attributes: Attributes) -> None:
    messages = _converse_messages(request.get("messages"))
    if messages is not None:
        attributes[semconv.INPUT_MESSAGES] = to_json(messages)
    system = request.get("system")
    if system:
        attributes[semconv.SYSTEM_INSTRUCTIONS] = to_json(_converse_parts(system))
    tools = _converse_tools(request.get("toolConfig"))
    if tools:
        attributes[semconv.TOOL_DEFINITIONS] = to_json(tools)


def _header_tokens(headers: Any, name: str) -> int | None:
    value = headers.get(name) if isinstance(headers, dict) else None
    return int(value) if isinstance(value, str) and value.isdigit() else None


def _invoke_response_attributes(
    call: LLMCall,
    family: str,
    model_id: str,
    response: dict[str, Any],
    headers: Any,
    capture: bool,
) -> Attributes:
    attributes: Attributes = {}
    model = model_id
    header_input = _header_tokens(headers, _INPUT_TOKENS_HEADER)
    header_output = _header_tokens(headers, _OUTPUT_TOKENS_HEADER)
    if family == "anthropic":
        if response.get("id"):
            attributes[semconv.RESPONSE_ID] = response["id"]
        if response.get("model"):
            attributes[semconv.RESPONSE_MODEL] = response["model"]
        stop = response.get("stop_reason")
        if stop:
            attributes[semconv.RESPONSE_FINISH_REASONS] = (stop,)
        if capture:
            parts = _anthropic_parts(response.get("content"))
            attributes[semconv.OUTPUT_MESSAGES] = to_json([output_message(parts, stop)])
        usage = response.get("usage")
        if isinstance(usage, dict):
            _add_bedrock_usage(
                call,
                attributes,
                model,
                _int_or_none(usage.get("input_tokens")),
                _int_or_none(usage.get("output_tokens")),
                _int_or_none(usage.get("cache_read_input_tokens")),
                _int_or_none(usage.get("cache_creation_input_tokens")),
            )
            return attributes
    elif family == "nova":
        stop = response.get("stopReason")
        if stop:
            attributes[semconv.RESPONSE_FINISH_REASONS] = (stop,)
        if capture:
            content = ((response.get("output") or {}).get("message") or {}).get("content")
            message = output_message(_converse_parts(content), stop)
            attributes[semconv.OUTPUT_MESSAGES] = to_json([message])
        if isinstance(response.get("usage"), dict):
            _add_converse_usage(call, attributes, model, response["usage"])
            return attributes
    elif family == "titan":
        results = response.get("results") or []
        reasons = tuple(r["completionReason"] for r in results if r.get("completionReason"))
        if reasons:
            attributes[semconv.RESPONSE_FINISH_REASONS] = reasons
        if capture:
            messages = [
                output_message(
                    [{"type": "text", "content": r.get("outputText")}], r.get("completionReason")
                )
                for r in results
            ]
            attributes[semconv.OUTPUT_MESSAGES] = to_json(messages)
        if header_input is None:
            header_input = _int_or_none(response.get("inputTextTokenCount"))
        if header_output is None and results:
            header_output = _int_or_none(results[0].get("tokenCount"))
    elif family == "embed":
        vector = response.get("embedding")
        if isinstance(vector, list):
            attributes[semconv.EMBEDDINGS_DIMENSION_COUNT] = len(vector)
        if header_input is None:
            header_input = _int_or_none(response.get("inputTextTokenCount"))
        call.add_usage(attributes, model, header_input, None)
        return attributes
    _add_bedrock_usage(call, attributes, model, header_input, header_output)
    return attributes


# --- streams -----------------------------------------------------------------------------------


class _EventIterator(wrapt.ObjectProxy):
    """botocore's `EventStream` with `__next__`, as the shared stream proxy expects.

    An `EventStream` is only iterable; this keeps one iterator over it and, when an event
    is an AWS error (`EventStreamError`), tells the accumulator its code before re-raising.
    """

    def __init__(self, stream: Any, accumulator: _BedrockStreamAccumulator) -> None:
        super().__init__(stream)
        self._self_events = iter(stream)
        self._self_accumulator = accumulator

    def __next__(self) -> Any:
        try:
            return next(self._self_events)
        except StopIteration:
            raise
        except BaseException as error:
            self._self_accumulator.error_code = aws_error_code(error)
            raise


class _BedrockStreamAccumulator:
    """Shared by both stream kinds: content blocks by index, stop reason, usage."""

    def __init__(self, model_id: str, capture: bool) -> None:
        self.model_id = model_id
        self.capture = capture
        self.error_code: str | None = None
        self.response_model: str | None = None
        self.response_id: str | None = None
        # by content-block index: ["text", fragments] or ["tool_call", id, name, fragments]
        self.blocks: dict[int, list[Any]] = {}
        self.stop_reason: str | None = None
        self.usage: tuple[int | None, int | None, int | None, int | None] | None = None

    def _text(self, index: int, text: str) -> None:
        block = self.blocks.get(index)
        if block is None:
            block = self.blocks[index] = ["text", []]
        block[-1].append(text)

    def _tool_start(self, index: int, tool_id: Any, name: Any) -> None:
        self.blocks[index] = ["tool_call", tool_id, name, []]

    def _tool_fragment(self, index: int, fragment: str) -> None:
        block = self.blocks.get(index)
        if block is None:
            block = self.blocks[index] = ["tool_call", None, None, []]
        block[-1].append(fragment)

    def attributes(self, call: LLMCall) -> Attributes:
        attributes: Attributes = {}
        if self.error_code:
            attributes[semconv.ERROR_TYPE] = self.error_code
        if self.response_id:
            attributes[semconv.RESPONSE_ID] = self.response_id
        if self.response_model:
            attributes[semconv.RESPONSE_MODEL] = self.response_model
        if self.stop_reason:
            attributes[semconv.RESPONSE_FINISH_REASONS] = (self.stop_reason,)
        if self.capture:
            parts = []
            for _, block in sorted(self.blocks.items()):
                if block[0] == "text":
                    parts.append({"type": "text", "content": "".join(block[1])})
                else:
                    parts.append(
                        {
                            "type": "tool_call",
                            "id": block[1],
                            "name": block[2],
                            "arguments": _parsed_arguments(block[3]),
                        }
                    )
            attributes[semconv.OUTPUT_MESSAGES] = to_json([output_message(parts, self.stop_reason)])
        if self.usage is None:
            call.add_usage(attributes, self.model_id, None, None)
        else:
            _add_bedrock_usage(call, attributes, self.model_id, *self.usage)
        return attributes

    def converse_event(self, event: dict[str, Any]) -> None:
        """One ConverseStream event (`{"contentBlockDelta": {...}}` and the like)."""
        delta = event.get("contentBlockDelta")
        if delta is not None:
            if self.capture:
                index = delta.get("contentBlockIndex", 0)
                body = delta.get("delta") or {}
                if "text" in body:
                    self._text(index, body["text"])
                elif "toolUse" in body:
                    self._tool_fragment(index, body["toolUse"].get("input") or "")
            return
        start = event.get("contentBlockStart")
        if start is not None:
            tool = (start.get("start") or {}).get("toolUse")
            if tool is not None and self.capture:
                index = start.get("contentBlockIndex", 0)
                self._tool_start(index, tool.get("toolUseId"), tool.get("name"))
            return
        stop = event.get("messageStop")
        if stop is not None:
            self.stop_reason = stop.get("stopReason")
            return
        metadata = event.get("metadata")
        if metadata is not None and isinstance(metadata.get("usage"), dict):
            usage = metadata["usage"]
            self.usage = (
                _int_or_none(usage.get("inputTokens")),
                _int_or_none(usage.get("outputTokens")),
                _int_or_none(usage.get("cacheReadInputTokens")),
                _int_or_none(usage.get("cacheWriteInputTokens")),
            )


class _ConverseStreamAccumulator(_BedrockStreamAccumulator):
    """Reads ConverseStream events."""

    def add(self, event: Any) -> None:
        self.converse_event(event)


class _InvokeStreamAccumulator(_BedrockStreamAccumulator):
    """Reads InvokeModelWithResponseStream chunks: JSON bytes in the model's own format."""

    def add(self, event: Any) -> None:
        chunk = event.get("chunk")
        if chunk is None:
            return
        body = json.loads(chunk.get("bytes") or b"{}")
        if not isinstance(body, dict):
            return
        kind = body.get("type")
        if kind is not None:
            self._anthropic(kind, body)
        elif "outputText" in body:  # Titan Text
            if self.capture:
                self._text(body.get("index", 0), body["outputText"])
            if body.get("completionReason"):
                self.stop_reason = body["completionReason"]
        else:  # Nova: Converse events inside the chunks
            self.converse_event(body)
        metrics = body.get(_INVOCATION_METRICS)
        if isinstance(metrics, dict) and (self.usage is None or self.usage[0] is None):
            self.usage = (
                _int_or_none(metrics.get("inputTokenCount")),
                _int_or_none(metrics.get("outputTokenCount")),
                _int_or_none(metrics.get("cacheReadInputTokenCount")),
                _int_or_none(metrics.get("cacheWriteInputTokenCount")),
            )

    def _anthropic(self, kind: str, body: dict[str, Any]) -> None:
        if kind == "content_block_delta":
            if self.capture:
                delta = body.get("delta") or {}
                if delta.get("type") == "text_delta":
                    self._text(body.get("index", 0), delta.get("text", ""))
                elif delta.get("type") == "input_json_delta":
                    self._tool_fragment(body.get("index", 0), delta.get("partial_json", ""))
        elif kind == "content_block_start":
            block = body.get("content_block") or {}
            if block.get("type") == "tool_use" and self.capture:
                self._tool_start(body.get("index", 0), block.get("id"), block.get("name"))
        elif kind == "message_start":
            message = body.get("message") or {}
            self.response_id = message.get("id")
            self.response_model = message.get("model")
            usage = message.get("usage") or {}
            self.usage = (
                _int_or_none(usage.get("input_tokens")),
                None,
                _int_or_none(usage.get("cache_read_input_tokens")),
                _int_or_none(usage.get("cache_creation_input_tokens")),
            )
        elif kind == "message_delta":
            self.stop_reason = (body.get("delta") or {}).get("stop_reason")
            output = _int_or_none((body.get("usage") or {}).get("output_tokens"))
            if self.usage is not None:
                self.usage = (self.usage[0], output, self.usage[2], self.usage[3])


# --- the wrapper -------------------------------------------------------------------------------


class _BedrockWrapper:
    """The wrapt wrapper of `_make_api_call`, bound to one tracer and capture setting."""

    def __init__(self, tracer: trace.Tracer, capture_content: bool) -> None:
        self.tracer = tracer
        self.capture_content = capture_content
        self.enabled = True

    def __call__(self, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        operation = args[0] if args else kwargs.get("operation_name")
        if operation not in _OPERATIONS or not self.enabled:
            return wrapped(*args, **kwargs)
        started = self._start(
            instance, operation, args[1] if len(args) > 1 else kwargs.get("api_params")
        )
        if started is None:
            return wrapped(*args, **kwargs)
        call, model, finish = started
        token = call.attach()
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as error:
            code = aws_error_code(error)
            call.end({semconv.ERROR_TYPE: code} if code else None, error)
            raise
        finally:
            call.detach(token)
        try:
            return finish(call, model, result)
        except Exception:
            report_internal_error("reading a bedrock response")
            call.end()
            return result

    def _start(
        self, client: Any, operation: str, params: Any
    ) -> tuple[LLMCall, str, Callable[[LLMCall, str, Any], Any]] | None:
        try:
            if client._service_model.service_name != _SERVICE or not should_trace():
                return None
            if not isinstance(params, dict):
                return None
            model_id = params.get("modelId")
            model = model_id if isinstance(model_id, str) else None
            attributes: Attributes = {semconv.PROVIDER_NAME: semconv.PROVIDER_AWS_BEDROCK}
            if model:
                attributes[semconv.REQUEST_MODEL] = model
            stream = operation in (_CONVERSE_STREAM, _INVOKE_STREAM)
            attributes[semconv.REQUEST_STREAM] = stream
            finish: Callable[[LLMCall, str, Any], Any]
            if operation in (_CONVERSE, _CONVERSE_STREAM):
                operation_name = semconv.OP_CHAT
                self._converse_request(params, attributes)
                finish = self._finish_converse_stream if stream else self._finish_converse
            else:
                body = _request_body(params.get("body"))
                family = _family(model or "", body) if body is not None else "other"
                operation_name = _FAMILY_OPERATIONS[family]
                if body is not None:
                    try:
                        _invoke_request_attributes(family, body, attributes, self.capture_content)
                    except Exception:
                        report_internal_error("reading a bedrock invoke body")
                if stream:
                    finish = self._finish_invoke_stream
                else:
                    finish = _InvokeFinisher(family, self.capture_content)
            attributes[semconv.OPERATION_NAME] = operation_name
        except Exception:
            report_internal_error("reading a bedrock request")
            return None
        call = start_call(
            self.tracer, operation_name, semconv.PROVIDER_AWS_BEDROCK, model, attributes
        )
        return None if call is None else (call, model or "", finish)

    def _converse_request(self, params: dict[str, Any], attributes: Attributes) -> None:
        inference = params.get("inferenceConfig")
        _add_params(inference, _CONVERSE_PARAMS, attributes)
        if isinstance(inference, dict):
            _add_stop_sequences(inference.get("stopSequences"), attributes)
        if self.capture_content:
            try:
                _add_converse_content(params, attributes)
            except Exception:
                report_internal_error("converting bedrock input messages")

    def _finish_converse(self, call: LLMCall, model: str, result: Any) -> Any:
        attributes: Attributes = {}
        stop = result.get("stopReason")
        if stop:
            attributes[semconv.RESPONSE_FINISH_REASONS] = (stop,)
        if self.capture_content:
            try:
                content = ((result.get("output") or {}).get("message") or {}).get("content")
                message = output_message(_converse_parts(content), stop)
                attributes[semconv.OUTPUT_MESSAGES] = to_json([message])
            except Exception:
                report_internal_error("converting bedrock output messages")
        _add_converse_usage(call, attributes, model, result.get("usage"))
        call.end(attributes)
        return result

    def _finish_converse_stream(self, call: LLMCall, model: str, result: Any) -> Any:
        stream = result.get("stream")
        if stream is None:
            call.end()
            return result
        accumulator = _ConverseStreamAccumulator(model, self.capture_content)
        result["stream"] = SyncStreamProxy(_EventIterator(stream, accumulator), call, accumulator)
        return result

    def _finish_invoke_stream(self, call: LLMCall, model: str, result: Any) -> Any:
        stream = result.get("body")
        if stream is None:
            call.end()
            return result
        accumulator = _InvokeStreamAccumulator(model, self.capture_content)
        result["body"] = SyncStreamProxy(_EventIterator(stream, accumulator), call, accumulator)
        return result


class _InvokeFinisher:
    """Reads an InvokeModel response body and hands the caller a fresh body with the same bytes."""

    __slots__ = ("capture", "family")

    def __init__(self, family: str, capture: bool) -> None:
        self.family = family
        self.capture = capture

    def __call__(self, call: LLMCall, model: str, result: Any) -> Any:
        body = result.get("body")
        if body is None or not hasattr(body, "read"):
            call.end()
            return result
        from botocore.response import StreamingBody

        data = body.read()
        result["body"] = StreamingBody(io.BytesIO(data), len(data))
        headers = (result.get("ResponseMetadata") or {}).get("HTTPHeaders")
        family = self.family
        try:
            response = json.loads(data) if data else {}
        except ValueError:
            response = None
        if not isinstance(response, dict):  # the model's own fault: the headers still count
            family, response = "other", {}
        attributes: Attributes = {}
        try:
            attributes = _invoke_response_attributes(
                call, family, model, response, headers, self.capture
            )
        except Exception:
            report_internal_error("reading a bedrock invoke response body")
        call.end(attributes)
        return result


def _request_body(body: Any) -> dict[str, Any] | None:
    """The InvokeModel request body as JSON, when it is bytes or text (a file is never read)."""
    if isinstance(body, (bytes, bytearray, str)):
        try:
            parsed = json.loads(body)
        except ValueError:
            return None
        return parsed if isinstance(parsed, dict) else None
    return None


# --- the instrumentor --------------------------------------------------------------------------


class BedrockInstrumentor(BaseInstrumentor):
    """Spans for Amazon Bedrock runtime calls made with boto3 / botocore.

    `instrument(tracer_provider=..., capture_content=...)` as for `OpenAIInstrumentor`.
    """

    def __init__(self) -> None:
        if not hasattr(self, "_wrapper"):
            self._wrapper: _BedrockWrapper | None = None

    def instrumentation_dependencies(self) -> Collection[str]:
        return BEDROCK_INSTRUMENTS

    def _instrument(self, **kwargs: Any) -> None:
        from botocore.client import BaseClient

        capture = kwargs.get("capture_content")
        if capture is None:
            capture = config.capture_content_from_env()
        tracer = trace.get_tracer(
            "assay.instrumentation.bedrock",
            tracer_version(),
            tracer_provider=kwargs.get("tracer_provider"),
        )
        self._wrapper = _BedrockWrapper(tracer, bool(capture))
        wrapt.wrap_function_wrapper(BaseClient, "_make_api_call", self._wrapper)

    def _uninstrument(self, **kwargs: Any) -> None:
        from botocore.client import BaseClient

        if self._wrapper is not None:
            self._wrapper.enabled = False
            self._wrapper = None
        unwrap(BaseClient, "_make_api_call")
