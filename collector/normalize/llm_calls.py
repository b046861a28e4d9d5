"""GenAI attributes (a span in any dialect, translated to the current GenAI conventions by
`dialects`) → one `llm_calls` row."""

from __future__ import annotations

import json
import logging
import math
from typing import Any

from assay.collector.normalize.cost import call_cost, usage_of, usage_source
from assay.collector.normalize.otlp import as_text
from assay.collector.schema import LlmCallRow
from assay.instrumentation import semconv as sc

log = logging.getLogger("assay.collector.normalize")

# Attributes that become their own columns, so the `attributes` map keeps only the rest.
COLUMN_ATTRIBUTES = frozenset(
    {
        sc.OPERATION_NAME,
        sc.PROVIDER_NAME,
        sc.SYSTEM,
        sc.REQUEST_MODEL,
        sc.RESPONSE_MODEL,
        sc.RESPONSE_ID,
        sc.INPUT_MESSAGES,
        sc.OUTPUT_MESSAGES,
        sc.SYSTEM_INSTRUCTIONS,
        sc.TOOL_DEFINITIONS,
        sc.USAGE_INPUT_TOKENS,
        sc.USAGE_OUTPUT_TOKENS,
        sc.USAGE_CACHE_READ_INPUT_TOKENS,
        sc.USAGE_CACHE_CREATION_INPUT_TOKENS,
        sc.USAGE_REASONING_OUTPUT_TOKENS,
        sc.USAGE_CACHE_WRITE_INPUT_TOKENS,
        sc.USAGE_AUDIO_INPUT_TOKENS,
        sc.USAGE_AUDIO_OUTPUT_TOKENS,
        sc.USAGE_SOURCE,
        sc.COST_USD,
        sc.RESPONSE_TIME_TO_FIRST_CHUNK,
        sc.ERROR_TYPE,
        sc.RESPONSE_FINISH_REASONS,
        sc.REQUEST_STREAM,
        sc.SERVER_ADDRESS,
        sc.USER_ID,
        sc.SESSION_ID,
        sc.PROMPT_NAME,
        sc.PROMPT_VERSION,
        sc.GEN_AI_PROMPT_VERSION,
        sc.TAGS,
        sc.EXPERIMENT_ID,
        sc.DATASET_ITEM_ID,
    }
)


# The token columns are Nullable(UInt64): a count they cannot hold is unknown (NULL), and the
# value the client sent stays readable in the span's attributes.
_MAX_COUNT = 2**64 - 1


def _count(value: Any) -> int | None:
    if value.__class__ is int:  # what instrumentations send (bool is a subclass, not int)
        return value if 0 <= value <= _MAX_COUNT else None
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    try:
        count = int(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return count if 0 <= count <= _MAX_COUNT else None


def _number(value: Any) -> float | None:
    """A finite number, else None: an infinite cost or time to first token is unknown."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


_JSON = json.JSONEncoder(ensure_ascii=False)  # as json.dumps(ensure_ascii=False), built once


def json_text(value: Any) -> str:
    """Message attributes arrive as JSON text (the conventions' shape) or as structured values."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return _JSON.encode(value)


def _strings(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [as_text(v) for v in value]
    return [as_text(value)]


def llm_call_row(
    attrs: dict[str, Any],
    *,
    dialect: str,
    start_ns: int,
    end_ns: int,
    trace_id: str,
    span_id: str,
    parent_span_id: str,
    service_name: str,
    is_error: bool,
    status_message: str,
) -> LlmCallRow:
    request_model = as_text(attrs.get(sc.REQUEST_MODEL) or "")
    response_model = as_text(attrs.get(sc.RESPONSE_MODEL) or "")
    model = response_model or request_model
    provider = as_text(attrs.get(sc.PROVIDER_NAME) or attrs.get(sc.SYSTEM) or "")
    usage = usage_of(attrs, _count)
    error_type = as_text(attrs.get(sc.ERROR_TYPE) or "")
    failed = is_error or bool(error_type)
    # The collector's price table prices every call the same way, whichever instrumentation
    # made it; the span's own figure is kept beside it, and stands in for a model the table
    # does not know.
    reported_cost = _number(attrs.get(sc.COST_USD))
    cost = call_cost(usage, model, provider, failed, reported_cost)

    ttft = _number(attrs.get(sc.RESPONSE_TIME_TO_FIRST_CHUNK))
    return LlmCallRow(
        timestamp=start_ns,
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent_span_id,
        service_name=service_name,
        operation=as_text(attrs.get(sc.OPERATION_NAME) or sc.OP_CHAT),
        provider=provider,
        request_model=request_model,
        response_model=response_model,
        model=model,
        response_id=as_text(attrs.get(sc.RESPONSE_ID) or ""),
        input_messages=json_text(attrs.get(sc.INPUT_MESSAGES)),
        output_messages=json_text(attrs.get(sc.OUTPUT_MESSAGES)),
        system_instructions=json_text(attrs.get(sc.SYSTEM_INSTRUCTIONS)),
        tool_definitions=json_text(attrs.get(sc.TOOL_DEFINITIONS)),
        input_tokens=usage.input,
        output_tokens=usage.output,
        cached_input_tokens=usage.cache_read,
        cache_creation_input_tokens=usage.cache_write,
        reasoning_tokens=usage.reasoning,
        audio_input_tokens=usage.audio_input,
        audio_output_tokens=usage.audio_output,
        cost_usd=cost.cost_usd,
        **cost.by_class,
        cost_source=cost.cost_source,
        usage_source=usage_source(attrs, usage),
        price_version=cost.price_version,
        reported_cost_usd=reported_cost,
        duration_ms=max(end_ns - start_ns, 0) / 1e6,
        time_to_first_token_ms=ttft * 1000 if ttft is not None else None,
        status="error" if failed else "ok",
        error_type=error_type,
        error_message=status_message,
        finish_reasons=_strings(attrs.get(sc.RESPONSE_FINISH_REASONS)),
        streamed=attrs.get(sc.REQUEST_STREAM) is True,
        server_address=as_text(attrs.get(sc.SERVER_ADDRESS) or ""),
        user_id=as_text(attrs.get(sc.USER_ID) or ""),
        session_id=as_text(attrs.get(sc.SESSION_ID) or ""),
        prompt_name=as_text(attrs.get(sc.PROMPT_NAME) or ""),
        prompt_version=as_text(
            attrs.get(sc.PROMPT_VERSION) or attrs.get(sc.GEN_AI_PROMPT_VERSION) or ""
        ),
        tags=_strings(attrs.get(sc.TAGS)),
        experiment_id=as_text(attrs.get(sc.EXPERIMENT_ID) or ""),
        dataset_item_id=as_text(attrs.get(sc.DATASET_ITEM_ID) or ""),
        dialect=dialect,
        attributes={k: as_text(v) for k, v in attrs.items() if k not in COLUMN_ATTRIBUTES},
    )
