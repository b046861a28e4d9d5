"""Where an LLM call's numbers came from: its usage normalised, its cost by token class from the
price table in force, and `cost_source` / `usage_source` saying why a figure is what it is."""

from __future__ import annotations

from typing import Any, Final, NamedTuple

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
_TOKEN_CLASSES = tuple(CLASS_COST_COLUMNS)
_UNPRICED: tuple[None, ...] = (None,) * len(CLASS_COST_COLUMNS)


class CallCost(NamedTuple):
    """The cost columns of one llm_calls row."""

    cost_usd: float | None
    cost_source: str
    by_class: tuple[float | None, ...]  # USD by CLASS_COST_COLUMNS, None unless the table priced it
    price_version: str


# The token counts of pricing.Usage, in its fields' order: the span's attribute for each (the
# cache writes under either of two names, the first found wins).
_USAGE_KEYS = (
    (sc.USAGE_INPUT_TOKENS,),
    (sc.USAGE_OUTPUT_TOKENS,),
    (sc.USAGE_CACHE_READ_INPUT_TOKENS,),
    (sc.USAGE_CACHE_CREATION_INPUT_TOKENS, sc.USAGE_CACHE_WRITE_INPUT_TOKENS),
    (sc.USAGE_REASONING_OUTPUT_TOKENS,),
    (sc.USAGE_AUDIO_INPUT_TOKENS,),
    (sc.USAGE_AUDIO_OUTPUT_TOKENS,),
)


def usage_of(attrs: dict[str, Any], count: Any) -> pricing.Usage:
    """The span's token counts, in the GenAI convention whichever rule the instrumentation
    followed: where the cache tokens exceed the input tokens, the input count left them out
    (Anthropic's own rule, kept by some instrumentations), so they are added to it."""
    counts: list[int | None] = []
    for keys in _USAGE_KEYS:
        found = None
        for key in keys:
            value = attrs.get(key)
            # `count` of what is there (most counts are absent: no call for them)
            found = None if value is None else count(value)
            if found is not None:
                break
        counts.append(found)
    input_tokens, _, cache_read, cache_write = counts[:4]
    if input_tokens is not None and (cache_read or cache_write):
        cached = (cache_read or 0) + (cache_write or 0)
        if cached > input_tokens:
            counts[0] = input_tokens + cached
    return pricing.Usage(*counts)


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
        usd = priced.by_class
        by_class = tuple([usd[name] for name in _TOKEN_CLASSES])
        return CallCost(priced.total, COST_PRICED, by_class, priced.version)
    unpriced = _UNPRICED
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
