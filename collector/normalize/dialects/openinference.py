"""OpenInference (Arize Phoenix's instrumentations): `openinference.span.kind` says what a span
is; LLM and EMBEDDING spans are calls. Models and usage under `llm.*`, messages as indexed
`llm.input_messages.N.message.*` attributes, the raw request and response in `input.value` /
`output.value` (JSON), request parameters in `llm.invocation_parameters`."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from assay.collector.normalize import span_kinds as kinds
from assay.collector.normalize.dialects._shape import (
    Message,
    Rename,
    apply_renames,
    chat_message,
    indexed,
    merged,
    openai_message,
    parsed_json,
)
from assay.collector.normalize.dialects.genai import GenAIEvent
from assay.collector.normalize.otlp import as_text
from assay.instrumentation import semconv as sc

NAME = "openinference"

SPAN_KIND = "openinference.span.kind"
_OPERATIONS = {"LLM": sc.OP_CHAT, "EMBEDDING": sc.OP_EMBEDDINGS}
INPUT_MESSAGES = "llm.input_messages"
OUTPUT_MESSAGES = "llm.output_messages"
INVOCATION_PARAMETERS = "llm.invocation_parameters"
INPUT_VALUE = "input.value"
OUTPUT_VALUE = "output.value"

# Content, on calls and on every other kind of span (chains, retrievers, rerankers, tools):
# messages, raw requests and responses, prompt templates and their variables, the tools offered,
# retrieved and reranked documents, embedded texts, and free-form metadata.
CONTENT_KEYS = frozenset(
    {
        INPUT_VALUE,
        OUTPUT_VALUE,
        INVOCATION_PARAMETERS,
        "llm.prompt_template.template",
        "llm.prompt_template.variables",
        "llm.function_call",
        "embedding.text",
        "reranker.query",
        "tool.description",
        "tool.json_schema",
        "tool.parameters",
        "message.content",
        "document.content",
        "document.metadata",
        "metadata",
    }
)
CONTENT_PREFIXES = (
    INPUT_MESSAGES + ".",
    OUTPUT_MESSAGES + ".",
    "llm.prompts",
    "llm.choices",
    "llm.tools.",
    "retrieval.documents.",
    "reranker.input_documents.",
    "reranker.output_documents.",
    "embedding.embeddings.",
)

RENAMES: dict[str, str | Rename] = {
    SPAN_KIND: Rename(sc.OPERATION_NAME, lambda kind: _OPERATIONS.get(str(kind).upper())),
    "llm.provider": sc.PROVIDER_NAME,
    "llm.system": sc.PROVIDER_NAME,
    "llm.model_name": sc.RESPONSE_MODEL,
    "embedding.model_name": sc.RESPONSE_MODEL,
    "llm.token_count.prompt": sc.USAGE_INPUT_TOKENS,
    "llm.token_count.completion": sc.USAGE_OUTPUT_TOKENS,
    "llm.token_count.prompt_details.cache_read": sc.USAGE_CACHE_READ_INPUT_TOKENS,
    "llm.token_count.prompt_details.cache_write": sc.USAGE_CACHE_CREATION_INPUT_TOKENS,
    "llm.token_count.completion_details.reasoning": sc.USAGE_REASONING_OUTPUT_TOKENS,
    "llm.cost.total": sc.COST_USD,
    "tag.tags": sc.TAGS,
    "llm.finish_reason": Rename(sc.RESPONSE_FINISH_REASONS, lambda reason: [reason]),
    "llm.prompt_template.version": sc.PROMPT_VERSION,
    # `user.id` and `session.id` are spelled as Assay spells them: read as they are.
}


def matches(attrs: Mapping[str, Any]) -> bool:
    kind = attrs.get(SPAN_KIND)
    return kind is not None and str(kind).upper() in _OPERATIONS  # most spans have none


def translate(attrs: Mapping[str, Any], events: Iterable[GenAIEvent] = ()) -> dict[str, Any]:
    out: dict[str, Any] = {}
    consumed = apply_renames(attrs, RENAMES, out)
    parameters = parsed_json(attrs.get(INVOCATION_PARAMETERS))
    request = parsed_json(attrs.get(INPUT_VALUE))
    response = parsed_json(attrs.get(OUTPUT_VALUE))
    request = request if isinstance(request, Mapping) else {}
    response = response if isinstance(response, Mapping) else {}
    parameters = parameters if isinstance(parameters, Mapping) else request
    model = parameters.get("model") or request.get("model")
    if model:
        out[sc.REQUEST_MODEL] = model
    if parameters.get("stream") is True:
        out[sc.REQUEST_STREAM] = True
    # The API's response as the client returned it, or LangChain's LLMResult around it (whose
    # id lets the openai client's own span, in a trace of its own, fold into this one).
    output = response.get("llm_output")
    response_id = response.get("id") or (output.get("id") if isinstance(output, Mapping) else None)
    if response_id:
        out[sc.RESPONSE_ID] = response_id

    inputs = _indexed_messages(attrs, INPUT_MESSAGES)
    if not inputs:
        inputs = [m for m in map(openai_message, request.get("messages") or ()) if m]
    outputs = _indexed_messages(attrs, OUTPUT_MESSAGES, output=True)
    choices = [c for c in response.get("choices") or () if isinstance(c, Mapping)]
    reasons = [c["finish_reason"] for c in choices if c.get("finish_reason")]
    if not outputs:
        outputs = [m for c in choices if (m := openai_message(c.get("message")))]
    for message, reason in zip(outputs, reasons, strict=False):
        message.setdefault("finish_reason", reason)
    if inputs:
        out[sc.INPUT_MESSAGES] = inputs
    if outputs:
        out[sc.OUTPUT_MESSAGES] = outputs
    if reasons:
        out[sc.RESPONSE_FINISH_REASONS] = reasons
    consumed.update(
        k
        for k in attrs
        if k.startswith((INPUT_MESSAGES + ".", OUTPUT_MESSAGES + "."))
        or k in (INPUT_VALUE, OUTPUT_VALUE, INVOCATION_PARAMETERS)
    )
    return merged(attrs, consumed, out)


def _indexed_messages(attrs: Mapping[str, Any], prefix: str, output: bool = False) -> list[Message]:
    messages = []
    for fields in indexed(attrs, prefix).values():
        contents = [
            part.get("message_content.text")
            for part in indexed(fields, "message.contents").values()
            if part.get("message_content.text") is not None
        ]
        calls = [
            {
                "id": call.get("tool_call.id"),
                "function": {
                    "name": call.get("tool_call.function.name"),
                    "arguments": call.get("tool_call.function.arguments"),
                },
            }
            for call in indexed(fields, "message.tool_calls").values()
        ]
        content = fields.get("message.content")
        messages.append(
            chat_message(
                fields.get("message.role") or ("assistant" if output else "user"),
                content if content is not None else [{"type": "text", "text": t} for t in contents],
                tool_calls=calls,
                tool_call_id=fields.get("message.tool_call_id"),
            )
        )
    return messages


# --- agent structure (normalize/agents.py) ------------------------------------------------------
# Every span carries its kind; a TOOL span's arguments and result are its input and output value.
KINDS = {
    "AGENT": kinds.AGENT,
    "CHAIN": kinds.CHAIN,
    "PROMPT": kinds.CHAIN,
    "LLM": kinds.LLM,
    "EMBEDDING": kinds.EMBEDDING,
    "TOOL": kinds.TOOL,
    "RETRIEVER": kinds.RETRIEVER,
    "RERANKER": kinds.RERANKER,
    "GUARDRAIL": kinds.GUARDRAIL,
    "EVALUATOR": kinds.EVALUATOR,
}
AGENT_NAME = "agent.name"
# LangChain's run metadata (JSON text): LangGraph marks its graphs' and their nodes' spans.
METADATA = "metadata"
TOOL_NAME = "tool.name"
TOOL_ID = "tool.id"  # the id of the model's tool call this span answers
TOOL_CALL_ID = "tool_call.id"
SESSION_KEYS = (sc.SESSION_ID,)
USER_KEYS = (sc.USER_ID,)
KIND_KEYS = frozenset({SPAN_KIND})  # every name `span_kind` reads


def span_kind(attrs: Mapping[str, Any]) -> str | None:
    kind = attrs.get(SPAN_KIND)
    return KINDS.get(kind.upper()) if isinstance(kind, str) else None


def agent_name(attrs: Mapping[str, Any]) -> str:
    return as_text(attrs.get(AGENT_NAME) or "")


def graph_name(attrs: Mapping[str, Any], span_name: str) -> str:
    """The name of a LangGraph graph, on its own span (named after the graph; `LangGraph` when
    it was given none), which names no agent: its runs' agent, as people call it. A node's span
    (a sub-graph run as a node too) names its node in the metadata and is no graph."""
    metadata = attrs.get(METADATA)
    if not isinstance(metadata, str) or "langgraph" not in metadata:
        return ""
    try:
        marks = json.loads(metadata)
    except ValueError:
        return ""
    graph = isinstance(marks, dict) and marks.get("ls_integration") == "langgraph"
    return span_name if graph and "langgraph_node" not in marks else ""


def tool_fields(attrs: Mapping[str, Any]) -> kinds.ToolFields:
    return kinds.ToolFields(
        name=as_text(attrs.get(TOOL_NAME) or ""),
        call_id=as_text(attrs.get(TOOL_ID) or attrs.get(TOOL_CALL_ID) or ""),
        arguments=as_text(attrs.get(INPUT_VALUE)),
        result=as_text(attrs.get(OUTPUT_VALUE)),
    )
