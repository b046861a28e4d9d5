"""The Bedrock Converse format: content blocks, requests, responses and stream events.

Converse and ConverseStream speak it, and so do Amazon Nova's InvokeModel bodies (the
same messages and blocks, the same events inside the stream's chunks). Bedrock counts
cache reads and writes apart from `inputTokens`, as Anthropic does; the span's input
tokens are their sum, as the GenAI conventions say.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from assay.instrumentation import semconv
from assay.instrumentation._spans import Attributes, LLMCall, report_internal_error, to_json
from assay.instrumentation.providers import _messages as msg
from assay.instrumentation.providers._anthropic_blocks import add_usage as add_cached_usage
from assay.instrumentation.providers._request import Parameters

# In the request's `inferenceConfig`; Nova's bodies also name the limit `max_new_tokens`.
INFERENCE = Parameters(
    {"temperature": semconv.REQUEST_TEMPERATURE, "topP": semconv.REQUEST_TOP_P},
    {
        "maxTokens": semconv.REQUEST_MAX_TOKENS,
        "max_new_tokens": semconv.REQUEST_MAX_TOKENS,
        "topK": semconv.REQUEST_TOP_K,
    },
    stop=("stopSequences",),
)


def part(block: Any) -> msg.Part | None:
    """One Converse (or Nova) content block as a GenAI part; None for cache points."""
    if not isinstance(block, dict):
        return msg.text_part(str(block))
    if "text" in block:
        return msg.text_part(block["text"])
    if "toolUse" in block:
        tool = block["toolUse"] or {}
        return msg.tool_call_part(tool.get("toolUseId"), tool.get("name"), tool.get("input"))
    if "toolResult" in block:
        result = block["toolResult"] or {}
        response = [
            item.get("text", item.get("json")) if isinstance(item, dict) else item
            for item in result.get("content") or ()
        ]
        return msg.tool_response_part(
            result.get("toolUseId"), response[0] if len(response) == 1 else response
        )
    if "cachePoint" in block:
        return None
    for modality in ("image", "video", "audio"):
        if modality in block:
            media_format = (block[modality] or {}).get("format")
            return msg.blob_part(modality, f"{modality}/{media_format}" if media_format else None)
    if "document" in block:
        document = block["document"] or {}
        return {"type": "file", "name": document.get("name"), "format": document.get("format")}
    if "reasoningContent" in block:
        reasoning = (block["reasoningContent"] or {}).get("reasoningText") or {}
        return msg.reasoning_part(reasoning.get("text"))
    return {"type": next(iter(block), "unknown")}


def parts(content: Any) -> list[msg.Part]:
    if isinstance(content, str):
        return [msg.text_part(content)]
    converted = []
    for block in content or ():
        converted_part = part(block)
        if converted_part is not None:
            converted.append(converted_part)
    return converted


def input_messages(messages: Any) -> list[msg.Part] | None:
    return msg.converted_messages(
        messages,
        lambda message: {
            "role": msg.field(message, "role"),
            "parts": parts(msg.field(message, "content")),
        },
    )


def tool_definitions(tool_config: Any) -> list[msg.Part] | None:
    if not isinstance(tool_config, dict):
        return None
    definitions: list[msg.Part] = []
    for tool in tool_config.get("tools") or ():
        spec = tool.get("toolSpec") if isinstance(tool, dict) else None
        if spec is None:
            continue  # a cache point between tools
        definition: msg.Part = {"type": "function", "name": spec.get("name")}
        if spec.get("description"):
            definition["description"] = spec["description"]
        schema = (spec.get("inputSchema") or {}).get("json")
        if schema is not None:
            definition["parameters"] = schema
        definitions.append(definition)
    return definitions


def request_content(request: Mapping[str, Any]) -> dict[str, Any]:
    """The content of a Converse request (or a Nova body), by attribute name."""
    system = request.get("system")
    return {
        semconv.INPUT_MESSAGES: input_messages(request.get("messages")),
        semconv.SYSTEM_INSTRUCTIONS: parts(system) if system else None,
        semconv.TOOL_DEFINITIONS: tool_definitions(request.get("toolConfig")),
    }


def usage_counts(usage: Any) -> tuple[int | None, int | None, int | None, int | None]:
    """(uncached input, output, cache read, cache write) of a Converse `usage`."""
    if not isinstance(usage, dict):
        return None, None, None, None
    return (
        msg.int_or_none(usage.get("inputTokens")),
        msg.int_or_none(usage.get("outputTokens")),
        msg.int_or_none(usage.get("cacheReadInputTokens")),
        msg.int_or_none(usage.get("cacheWriteInputTokens")),
    )


def response_attributes(
    call: LLMCall, response: Mapping[str, Any], model: str | None, capture: bool
) -> Attributes:
    """A Converse response (or a Nova body): output message, stop reason, usage."""
    attributes: Attributes = {}
    stop = response.get("stopReason")
    stop = stop if isinstance(stop, str) and stop else None
    if stop:
        attributes[semconv.RESPONSE_FINISH_REASONS] = (stop,)
    if capture:
        try:
            content = ((response.get("output") or {}).get("message") or {}).get("content")
            attributes[semconv.OUTPUT_MESSAGES] = to_json(
                [msg.output_message(parts(content), stop)]
            )
        except Exception:
            report_internal_error("converting bedrock output messages")
    add_cached_usage(call, attributes, model, *usage_counts(response.get("usage")))
    return attributes


def parsed_arguments(fragments: list[str]) -> Any:
    """A streamed tool call's JSON input; a stream cut short keeps the text that arrived."""
    text = "".join(fragments)
    try:
        return json.loads(text) if text else {}
    except ValueError:
        return text


class ConverseEvents:
    """What a Converse stream's span needs: content blocks by index, stop reason, usage.

    `add` takes one event as botocore hands it (`{"contentBlockDelta": {...}}`); Nova's
    InvokeModel stream carries the same events as JSON chunks.
    """

    __slots__ = ("_blocks", "_capture", "stop_reason", "usage")

    def __init__(self, capture: bool) -> None:
        self._capture = capture
        # by content-block index: ["text", fragments] or ["tool_call", id, name, fragments]
        self._blocks: dict[int, list[Any]] = {}
        self.stop_reason: str | None = None
        self.usage: tuple[int | None, int | None, int | None, int | None] | None = None

    def add(self, event: Mapping[str, Any]) -> None:
        delta = event.get("contentBlockDelta")
        if delta is not None:
            if self._capture:
                index = delta.get("contentBlockIndex", 0)
                body = delta.get("delta") or {}
                if "text" in body:
                    self.text(index, body["text"])
                elif "toolUse" in body:
                    self._tool_fragment(index, (body["toolUse"] or {}).get("input") or "")
                elif "reasoningContent" in body:
                    self._fragment(index, "reasoning", (body["reasoningContent"] or {}).get("text"))
            return
        start = event.get("contentBlockStart")
        if start is not None:
            tool = (start.get("start") or {}).get("toolUse")
            if tool is not None and self._capture:
                index = start.get("contentBlockIndex", 0)
                self._blocks[index] = ["tool_call", tool.get("toolUseId"), tool.get("name"), []]
            return
        stop = event.get("messageStop")
        if stop is not None:
            reason = stop.get("stopReason")
            self.stop_reason = reason if isinstance(reason, str) else None
            return
        metadata = event.get("metadata")
        if metadata is not None:
            usage = metadata.get("usage")
            if isinstance(usage, dict):
                self.usage = usage_counts(usage)

    def text(self, index: int, text: Any) -> None:
        self._fragment(index, "text", text)

    def _fragment(self, index: int, kind: str, text: Any) -> None:
        if not isinstance(text, str):
            return
        block = self._blocks.get(index)
        if block is None:
            block = self._blocks[index] = [kind, []]
        block[-1].append(text)

    def _tool_fragment(self, index: int, fragment: str) -> None:
        block = self._blocks.get(index)
        if block is None:
            block = self._blocks[index] = ["tool_call", None, None, []]
        block[-1].append(fragment)

    def output_messages(self) -> list[msg.Part]:
        # Adjacent text blocks make one text part: Nova streams each fragment of its reply
        # as a content block of its own.
        message_parts: list[msg.Part] = []
        for _, block in sorted(self._blocks.items()):
            if block[0] == "text":
                msg.append_part(message_parts, msg.text_part("".join(block[1])))
            elif block[0] == "reasoning":
                msg.append_part(message_parts, msg.reasoning_part("".join(block[1])))
            else:
                arguments = parsed_arguments(block[3])
                message_parts.append(msg.tool_call_part(block[1], block[2], arguments))
        return [msg.output_message(message_parts, self.stop_reason)]

    def attributes(self, call: LLMCall, model: str | None) -> Attributes:
        attributes: Attributes = {}
        if self.stop_reason:
            attributes[semconv.RESPONSE_FINISH_REASONS] = (self.stop_reason,)
        if self._capture:
            try:
                attributes[semconv.OUTPUT_MESSAGES] = to_json(self.output_messages())
            except Exception:
                report_internal_error("converting bedrock streamed messages")
        usage = self.usage or (None, None, None, None)
        add_cached_usage(call, attributes, model, *usage)
        return attributes
