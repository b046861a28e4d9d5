"""Where an LLM call's numbers came from: its usage normalised, its cost by token class from the
price table in force, and `cost_source` / `usage_source` saying why a figure is what it is."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from assay.instrumentation import pricing
from assay.instrumentation import semconv as sc

# cost_source values: how cost_usd was found, or why it is NULL.
COST_PRICED: Final = "priced"  # the price table in force (price_version names it)
COST_REPORTED: Final = "reported"  # the instrumentation's own figure (a model the table lacks)
COST_UNPRICED_MODEL: Final = "unpriced_model"  # usage known, model not in the table (or local)
COST_NO_USAGE: Final = "no_usage"  # the call succeeded but no token counts came with it
COST_FAILED_CALL: Final = "failed_call"  # the call failed: nothing to bill
COST_SOURCES: Final = (
    COST_PRICED,
    COST_REPORTED,
    COST_UNPRICED_MODEL,
    COST_NO_USAGE,
    COST_FAILED_CALL,
)

# The llm_calls column holding each token class's cost (pricing.TOKEN_CLASSES order).
CLASS_COST_COLUMNS: Final = {name: f"{name}_cost_usd" for name, _, _ in pricing.TOKEN_CLASSES}


@dataclass(frozen=True, slots=True)
class CallCost:
    """The cost columns of one llm_calls row."""

    cost_usd: float | None
    cost_source: str
    by_class: dict[str, float | None]  # column name -> USD, None unless the table priced it
    price_version: str


def usage_of(attrs: dict[str, Any], count: Any) -> pricing.Usage:
    """The span's token counts, in the GenAI convention whichever rule the instrumentation
    followed: where the cache tokens exceed the input tokens, the input count left them out
    (Anthropic's own rule, kept by some instrumentations), so they are added to it."""
    cache_write = count(attrs.get(sc.USAGE_CACHE_CREATION_INPUT_TOKENS))
    if cache_write is None:
        cache_write = count(attrs.get(sc.USAGE_CACHE_WRITE_INPUT_TOKENS))
    usage = pricing.Usage(
        input=count(attrs.get(sc.USAGE_INPUT_TOKENS)),
        output=count(attrs.get(sc.USAGE_OUTPUT_TOKENS)),
        cache_read=count(attrs.get(sc.USAGE_CACHE_READ_INPUT_TOKENS)),
        cache_write=cache_write,
        reasoning=count(attrs.get(sc.USAGE_REASONING_OUTPUT_TOKENS)),
        audio_input=count(attrs.get(sc.USAGE_AUDIO_INPUT_TOKENS)),
        audio_output=count(attrs.get(sc.USAGE_AUDIO_OUTPUT_TOKENS)),
    )
    cached = (usage.cache_read or 0) + (usage.cache_write or 0)
    if usage.input is not None and cached > usage.input:
        return pricing.Usage(
            input=usage.input + cached,
            output=usage.output,
            cache_read=usage.cache_read,
            cache_write=usage.cache_write,
            reasoning=usage.reasoning,
            audio_input=usage.audio_input,
            audio_output=usage.audio_output,
        )
    return usage


def usage_source(attrs: dict[str, Any], usage: pricing.Usage) -> str:
    """The span's own `assay.usage.source`; for other instrumentations, `reported` when the
    span has token counts, else `none`."""
    stated = attrs.get(sc.USAGE_SOURCE)
    if isinstance(stated, str) and stated in sc.USAGE_SOURCES:
        return stated
    if attrs.get(sc.USAGE_REPORTED) is False:
        return sc.USAGE_SOURCE_NONE
    return sc.USAGE_SOURCE_REPORTED if usage.known else sc.USAGE_SOURCE_NONE


def call_cost(
    usage: pricing.Usage,
    model: str,
    provider: str,
    failed: bool,
    reported_cost: float | None,
) -> CallCost:
    """The cost of a call in the price table in force; else the instrumentation's own figure;
    else NULL with the reason."""
    table = pricing.current()
    priced = table.cost(usage, model, provider)
    if priced is not None:
        by_class: dict[str, float | None] = {
            CLASS_COST_COLUMNS[name]: usd for name, usd in priced.by_class.items()
        }
        return CallCost(priced.total, COST_PRICED, by_class, priced.version)
    unpriced = dict.fromkeys(CLASS_COST_COLUMNS.values())
    # A reported 0 for a call that used tokens is an instrumentation that could not price it
    # (OpenLIT offline): unpriced, not free.
    free = reported_cost == 0 and bool(usage.input or usage.output)
    if reported_cost is not None and not free:
        return CallCost(reported_cost, COST_REPORTED, unpriced, "")
    if failed and not usage.known:
        reason = COST_FAILED_CALL
    elif not usage.known:
        reason = COST_NO_USAGE
    else:
        reason = COST_UNPRICED_MODEL
    return CallCost(None, reason, unpriced, "")
