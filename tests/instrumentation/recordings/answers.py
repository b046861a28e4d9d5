"""What the provider answered in a recording, read straight from the recorded bytes.

`answer(call)` reads the recorded response in its provider's documented wire format, without
the client library or the instrumentation, and returns an `Answer` in the terms a span uses:
token counts in the OpenTelemetry GenAI convention (input includes cache reads and writes,
output includes reasoning; each provider's own rule normalised as docs/cost.md says), finish
reasons as the instrumentation spells them, the reply's text, reasoning and tool calls.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from assay.instrumentation import semconv as sc
from tests.instrumentation.recordings.cassettes import RecordedCall


@dataclass
class Answer:
    provider: str  # gen_ai.provider.name the span must carry
    model: str | None = None  # the response's model (None: the API names none)
    response_id: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read: int = 0
    cache_write: int = 0
    reasoning: int = 0
    finish_reasons: tuple[str, ...] = ()
    text: str = ""
    reasoning_text: str = ""
    tool_calls: list[tuple[str, Any]] = field(default_factory=list)  # (name, arguments)
    code: list[str] = field(default_factory=list)  # code written for a code-execution tool
    code_output: list[str] = field(default_factory=list)  # what running it printed
    error: bool = False

    @property
    def usage_known(self) -> bool:
        return self.input_tokens is not None or self.output_tokens is not None


def arguments(value: Any) -> Any:
    """Tool-call arguments as data, whether the wire carried a JSON string or an object."""
    if isinstance(value, str):
        try:
            return json.loads(value) if value.strip() else {}
        except ValueError:
            return value
    return value


def _int(value: Any) -> int:
    return value if isinstance(value, int) else 0


# --- OpenAI's chat completions (OpenAI, Together, Mistral, LiteLLM's OpenAI route) ---------


def openai_chat(call: RecordedCall, provider: str) -> Answer:
    if call.status >= 400:
        return Answer(provider, error=True)
    if call.streamed:
        return _openai_stream(call.events(), provider)
    body = call.json()
    answer = Answer(provider, model=body.get("model"), response_id=body.get("id"))
    for choice in body.get("choices") or []:
        message = choice.get("message") or {}
        answer.text += message.get("content") or ""
        for tool_call in message.get("tool_calls") or []:
            function = tool_call["function"]
            answer.tool_calls.append((function["name"], arguments(function["arguments"])))
        if choice.get("finish_reason"):
            answer.finish_reasons += (choice["finish_reason"],)
    _openai_usage(answer, body.get("usage"))
    return answer


def _openai_usage(answer: Answer, usage: Any) -> None:
    if not usage:
        return
    answer.input_tokens = usage.get("prompt_tokens")
    answer.output_tokens = usage.get("completion_tokens")
    answer.cache_read = _int((usage.get("prompt_tokens_details") or {}).get("cached_tokens"))
    answer.reasoning = _int((usage.get("completion_tokens_details") or {}).get("reasoning_tokens"))


def _openai_stream(events: list[Any], provider: str) -> Answer:
    answer = Answer(provider)
    calls: dict[int, list[Any]] = {}
    for event in events:
        answer.response_id = answer.response_id or event.get("id")
        answer.model = answer.model or event.get("model")
        for choice in event.get("choices") or []:
            delta = choice.get("delta") or {}
            answer.text += delta.get("content") or ""
            for tool_call in delta.get("tool_calls") or []:
                entry = calls.setdefault(tool_call.get("index", 0), ["", ""])
                function = tool_call.get("function") or {}
                entry[0] += function.get("name") or ""
                entry[1] += function.get("arguments") or ""
            if choice.get("finish_reason"):
                answer.finish_reasons += (choice["finish_reason"],)
        if event.get("usage"):
            _openai_usage(answer, event["usage"])
    answer.tool_calls = [(name, arguments(args)) for name, args in calls.values()]
    return answer


# --- Anthropic's messages (Anthropic, Bedrock's Claude bodies, LiteLLM's Anthropic route) --


def _anthropic_usage(answer: Answer, usage: dict[str, Any]) -> None:
    # Anthropic's input_tokens leaves the cache out: the convention adds it.
    answer.cache_read = _int(usage.get("cache_read_input_tokens"))
    answer.cache_write = _int(usage.get("cache_creation_input_tokens"))
    answer.input_tokens = _int(usage.get("input_tokens")) + answer.cache_read + answer.cache_write
    answer.output_tokens = usage.get("output_tokens")


def _anthropic_block(answer: Answer, block: dict[str, Any]) -> None:
    if block.get("type") == "text":
        answer.text += block.get("text") or ""
    elif block.get("type") == "thinking":
        answer.reasoning_text += block.get("thinking") or ""
    elif block.get("type") == "tool_use":
        answer.tool_calls.append((block["name"], block.get("input") or {}))


def anthropic_message(body: dict[str, Any], provider: str) -> Answer:
    answer = Answer(provider, model=body.get("model"), response_id=body.get("id"))
    for block in body.get("content") or []:
        _anthropic_block(answer, block)
    if body.get("stop_reason"):
        answer.finish_reasons = (body["stop_reason"],)
    _anthropic_usage(answer, body.get("usage") or {})
    return answer


def anthropic_stream(events: list[dict[str, Any]], provider: str) -> Answer:
    answer = Answer(provider)
    usage: dict[str, Any] = {}
    blocks: dict[int, dict[str, Any]] = {}
    for event in events:
        kind = event.get("type")
        if kind == "message_start":
            message = event["message"]
            answer.model, answer.response_id = message.get("model"), message.get("id")
            usage.update(message.get("usage") or {})
        elif kind == "content_block_start":
            block = dict(event["content_block"])
            block["partial"] = ""
            blocks[event["index"]] = block
        elif kind == "content_block_delta":
            block, delta = blocks[event["index"]], event["delta"]
            if delta["type"] == "text_delta":
                block["text"] = (block.get("text") or "") + delta["text"]
            elif delta["type"] == "thinking_delta":
                block["thinking"] = (block.get("thinking") or "") + delta["thinking"]
            elif delta["type"] == "input_json_delta":
                block["partial"] += delta["partial_json"]
        elif kind == "message_delta":
            if event.get("delta", {}).get("stop_reason"):
                answer.finish_reasons = (event["delta"]["stop_reason"],)
            usage.update({k: v for k, v in (event.get("usage") or {}).items() if v is not None})
    for _, block in sorted(blocks.items()):
        if block.get("type") == "tool_use" and block["partial"]:
            block["input"] = json.loads(block["partial"])
        _anthropic_block(answer, block)
    _anthropic_usage(answer, usage)
    return answer


def anthropic(call: RecordedCall, provider: str = sc.PROVIDER_ANTHROPIC) -> Answer:
    if call.status >= 400:
        return Answer(provider, error=True)
    if call.streamed:
        return anthropic_stream(call.events(), provider)
    return anthropic_message(call.json(), provider)


# --- Amazon Bedrock: Converse, and InvokeModel's body families ----------------------------


def _converse_usage(answer: Answer, usage: dict[str, Any]) -> None:
    # Converse's inputTokens leaves the cache out, as Anthropic's does.
    answer.cache_read = _int(usage.get("cacheReadInputTokens")) or _int(
        usage.get("cacheReadInputTokenCount")
    )
    answer.cache_write = _int(usage.get("cacheWriteInputTokens")) or _int(
        usage.get("cacheWriteInputTokenCount")
    )
    answer.input_tokens = _int(usage.get("inputTokens")) + answer.cache_read + answer.cache_write
    answer.output_tokens = usage.get("outputTokens")


def _converse_content(answer: Answer, content: list[dict[str, Any]]) -> None:
    for block in content:
        if "text" in block:
            answer.text += block["text"]
        elif "toolUse" in block:
            answer.tool_calls.append((block["toolUse"]["name"], block["toolUse"].get("input")))
        elif "reasoningContent" in block:
            answer.reasoning_text += (
                block["reasoningContent"].get("reasoningText", {}).get("text", "")
            )


def converse_message(body: dict[str, Any]) -> Answer:
    answer = Answer(sc.PROVIDER_AWS_BEDROCK)
    _converse_content(answer, body["output"]["message"]["content"])
    answer.finish_reasons = (body["stopReason"],)
    _converse_usage(answer, body.get("usage") or {})
    return answer


def converse_stream(events: list[dict[str, Any]]) -> Answer:
    """Converse stream events, and Nova's InvokeModel stream (the same events, in chunks)."""
    answer = Answer(sc.PROVIDER_AWS_BEDROCK)
    tools: dict[int, list[Any]] = {}
    for event in events:
        payload = event["payload"]
        kind = event["event"] if event["event"] != "chunk" else next(iter(payload), None)
        if event["event"] == "chunk":
            payload = payload[kind] if kind else {}
        if kind == "contentBlockStart" and "toolUse" in payload.get("start", {}):
            start = payload["start"]["toolUse"]
            tools[payload.get("contentBlockIndex", 0)] = [start["name"], ""]
        elif kind == "contentBlockDelta":
            delta = payload["delta"]
            if "text" in delta:
                answer.text += delta["text"]
            elif "toolUse" in delta:
                tools[payload.get("contentBlockIndex", 0)][1] += delta["toolUse"]["input"]
            elif "reasoningContent" in delta:
                answer.reasoning_text += delta["reasoningContent"].get("text", "")
        elif kind == "messageStop":
            answer.finish_reasons = (payload["stopReason"],)
        elif kind == "metadata":
            _converse_usage(answer, payload.get("usage") or {})
    answer.tool_calls = [(name, arguments(args)) for name, args in tools.values()]
    return answer


def bedrock(call: RecordedCall) -> Answer:
    if call.status >= 400:
        return Answer(sc.PROVIDER_AWS_BEDROCK, error=True)
    operation = call.path.rsplit("/", 1)[-1]
    if operation == "converse":
        return converse_message(call.json())
    if operation == "converse-stream":
        return converse_stream(call.events())
    if operation == "invoke":
        body = call.json()
        if body.get("type") == "message":  # a Claude messages body
            return anthropic_message(body, sc.PROVIDER_AWS_BEDROCK)
        if "output" in body:  # Nova's messages-v1 body: Converse's shape
            return converse_message(body)
    if operation == "invoke-with-response-stream":
        events = call.events()
        if events and "type" in events[0]["payload"]:  # Claude's message events in chunks
            return anthropic_stream([e["payload"] for e in events], sc.PROVIDER_AWS_BEDROCK)
        return converse_stream(events)
    raise ValueError(f"{call.name}: no reader for Bedrock {operation}")


# --- Google Gemini -------------------------------------------------------------------------


def _gemini_chunk(answer: Answer, body: dict[str, Any]) -> None:
    answer.response_id = answer.response_id or body.get("responseId")
    answer.model = answer.model or body.get("modelVersion")
    for candidate in body.get("candidates") or []:
        for part in (candidate.get("content") or {}).get("parts") or []:
            if "text" in part:
                if part.get("thought"):
                    answer.reasoning_text += part["text"]
                else:
                    answer.text += part["text"]
            elif "functionCall" in part:
                call = part["functionCall"]
                answer.tool_calls.append((call["name"], call.get("args") or {}))
            elif "executableCode" in part:
                answer.code.append(part["executableCode"]["code"])
            elif "codeExecutionResult" in part:
                answer.code_output.append(part["codeExecutionResult"].get("output", ""))
        if candidate.get("finishReason"):
            answer.finish_reasons = (candidate["finishReason"].lower(),)
    usage = body.get("usageMetadata")
    if usage:
        # promptTokenCount includes the cache; the tools' own prompt (code execution, search)
        # is billed as input too. candidatesTokenCount leaves the thoughts out.
        prompt = usage.get("promptTokenCount")
        tool_prompt = usage.get("toolUsePromptTokenCount")
        answer.input_tokens = None if prompt is None else prompt + _int(tool_prompt)
        answer.reasoning = _int(usage.get("thoughtsTokenCount"))
        answer.output_tokens = _int(usage.get("candidatesTokenCount")) + answer.reasoning
        answer.cache_read = _int(usage.get("cachedContentTokenCount"))


def gemini(call: RecordedCall) -> Answer:
    answer = Answer(sc.PROVIDER_GCP_GEMINI)
    if call.status >= 400:
        answer.error = True
        return answer
    for body in call.events() if call.streamed else [call.json()]:
        _gemini_chunk(answer, body)
    return answer


# --- Ollama --------------------------------------------------------------------------------


def ollama(call: RecordedCall) -> Answer:
    answer = Answer(sc.PROVIDER_OLLAMA)
    if call.status >= 400:
        answer.error = True
        return answer
    for body in call.events() if call.streamed else [call.json()]:
        answer.model = body.get("model")
        message = body.get("message") or {}
        answer.text += message.get("content") or ""
        answer.reasoning_text += message.get("thinking") or ""
        for tool_call in message.get("tool_calls") or []:
            function = tool_call["function"]
            answer.tool_calls.append((function["name"], arguments(function.get("arguments"))))
        if body.get("done"):
            answer.finish_reasons = (body.get("done_reason") or "stop",)
            answer.input_tokens = body.get("prompt_eval_count")
            answer.output_tokens = body.get("eval_count")
    return answer


# --- LiteLLM: the provider's answer, as LiteLLM hands it over in OpenAI's shape ------------

_ANTHROPIC_TO_OPENAI_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
}


def litellm(call: RecordedCall) -> Answer:
    host = urlsplit(call.uri).hostname
    if host == "api.openai.com":
        return openai_chat(call, sc.PROVIDER_OPENAI)
    answer = anthropic(call)
    answer.finish_reasons = tuple(_ANTHROPIC_TO_OPENAI_FINISH[r] for r in answer.finish_reasons)
    return answer


def answer(call: RecordedCall) -> Answer:
    """What the provider answered to `call`, in the span's terms."""
    readers = {
        "openai": lambda: openai_chat(call, sc.PROVIDER_OPENAI),
        "together": lambda: openai_chat(call, sc.PROVIDER_TOGETHER_AI),
        "mistral": lambda: openai_chat(call, sc.PROVIDER_MISTRAL_AI),
        "anthropic": lambda: anthropic(call),
        "bedrock": lambda: bedrock(call),
        "google-genai": lambda: gemini(call),
        "ollama": lambda: ollama(call),
        "litellm": lambda: litellm(call),
    }
    return readers[call.provider]()
