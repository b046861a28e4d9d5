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
from assay.instrumentation import pricing
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
        return [v if v.__class__ is str else as_text(v) for v in value]
    return [as_text(value)]


def _text(value: Any) -> str:
    """`as_text(value or "")`; a string (nearly every value) or None without a call."""
    if value.__class__ is str:
        return value
    return as_text(value) if value else ""


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
    # Every span the collector stores as a call comes through here: a string (nearly every
    # value) is taken as it is (`_text`), and the row is built positionally.
    get = attrs.get
    request_model = _text(get(sc.REQUEST_MODEL))
    response_model = _text(get(sc.RESPONSE_MODEL))
    model = response_model or request_model
    provider = _text(get(sc.PROVIDER_NAME) or get(sc.SYSTEM))
    counts = usage_of(attrs)
    error_type = _text(get(sc.ERROR_TYPE))
    failed = is_error or bool(error_type)
    # The collector's price table prices every call the same way, whichever instrumentation
    # made it; the span's own figure is kept beside it, and stands in for a model the table
    # does not know.
    value = get(sc.COST_USD)
    reported_cost = None if value is None else _number(value)
    finish_reasons = _strings(get(sc.RESPONSE_FINISH_REASONS))
    cost_usd, cost_source, by_class, price_version = call_cost(
        counts, model, provider, failed, reported_cost, bool(finish_reasons)
    )
    value = get(sc.RESPONSE_TIME_TO_FIRST_CHUNK)
    ttft = None if value is None else _number(value)
    response_id = _text(get(sc.RESPONSE_ID))
    # By position, in LlmCallRow's field order (schema.py): tests/collector/test_golden_rows.py
    # catches one changed without the other.
    return LlmCallRow(
        start_ns,
        trace_id,
        span_id,
        parent_span_id,
        service_name,
        _text(get(sc.OPERATION_NAME) or sc.OP_CHAT),
        provider,
        request_model,
        response_model,
        model,
        response_id,
        json_text(get(sc.INPUT_MESSAGES)),
        json_text(get(sc.OUTPUT_MESSAGES)),
        json_text(get(sc.SYSTEM_INSTRUCTIONS)),
        json_text(get(sc.TOOL_DEFINITIONS)),
        counts[0],  # input_tokens ... audio_output_tokens: pricing.Usage's order
        counts[1],
        counts[2],
        counts[3],
        counts[4],
        counts[5],
        counts[6],
        cost_usd,
        by_class[0],  # input_cost_usd ... in CLASS_COST_COLUMNS' order
        by_class[1],
        by_class[2],
        by_class[3],
        by_class[4],
        by_class[5],
        by_class[6],
        cost_source,
        usage_source(attrs, pricing.usage_known(counts[0], counts[1])),
        price_version,
        reported_cost,
        max(end_ns - start_ns, 0) / 1e6,
        ttft * 1000 if ttft is not None else None,
        "error" if failed else "ok",
        error_type,
        status_message,
        finish_reasons,
        get(sc.REQUEST_STREAM) is True,
        _text(get(sc.SERVER_ADDRESS)),
        _text(get(sc.USER_ID)),
        _text(get(sc.SESSION_ID)),
        _text(get(sc.PROMPT_NAME)),
        _text(get(sc.PROMPT_VERSION) or get(sc.GEN_AI_PROMPT_VERSION)),
        _strings(get(sc.TAGS)),
        _text(get(sc.EXPERIMENT_ID)),
        _text(get(sc.DATASET_ITEM_ID)),
        _other_attributes(attrs),
        dialect,
    )


def _other_attributes(attrs: dict[str, Any]) -> dict[str, str]:
    """The attributes no column holds, as text, in the span's order."""
    # One pass, one test of each name (the set difference `attrs.keys() - COLUMN_ATTRIBUTES`
    # builds a set of every name and tries each column's, then a second pass: 10 % more).
    return {
        key: value if value.__class__ is str else as_text(value)
        for key, value in attrs.items()
        if key not in COLUMN_ATTRIBUTES
    }
