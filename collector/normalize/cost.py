"""Where an LLM call's numbers came from: its usage normalised, its cost by token class from the
price table in force, and `cost_source` / `usage_source` saying why a figure is what it is."""

from __future__ import annotations

from typing import Any, Final

from assay.instrumentation import pricing
from assay.instrumentation import semconv as sc

# cost_source values: how cost_usd was found, or why it is NULL.
COST_PRICED: Final = "priced"  # the price table in force (price_version names it)
COST_REPORTED: Final = "reported"  # the instrumentation's own figure (a model the table lacks)
COST_UNPRICED_MODEL: Final = "unpriced_model"  # usage known, model not in the table (or local)
COST_NO_USAGE: Final = "no_usage"  # the call succeeded but no token counts came with it
# The call failed before its answer finished (no finish reason): unpriced whatever usage it
# reported. Rarely billed, and where part of it may be (an Anthropic stream cut by an `error`
# event after `message_start` carried the input usage) the provider documents nothing, so no
# figure is claimed; its tokens stay in their columns. A call whose answer finished and then
# failed in the client (openai's parse() raising on an answer cut at max_tokens) was billed
# whole: it is priced, and stays an error.
COST_FAILED_CALL: Final = "failed_call"
# What every count of unpriced calls counts (calls whose cost_usd is NULL, whatever the reason
# above): one sentence, in pricing beside the prices, so the evaluators say it too.
UNPRICED_CALLS: Final = pricing.UNPRICED_CALLS
COST_SOURCES: Final = (
    COST_PRICED,
    COST_REPORTED,
    COST_UNPRICED_MODEL,
    COST_NO_USAGE,
    COST_FAILED_CALL,
)

# The llm_calls column holding each token class's cost (pricing.TOKEN_CLASSES order).
CLASS_COST_COLUMNS: Final = {name: f"{name}_cost_usd" for name, _, _ in pricing.TOKEN_CLASSES}
_UNPRICED: tuple[None, ...] = (None,) * len(CLASS_COST_COLUMNS)


# (cost_usd, cost_source, USD by CLASS_COST_COLUMNS (None unless the table priced the call),
# price_version): the cost columns of one llm_calls row, a plain tuple (every call is priced).
CallCost = tuple[float | None, str, tuple[float | None, ...], str]

# A count no call has: the longest contexts hold a few million tokens. Above it a count is a
# broken instrumentation's (2^31 - 1, 2^63 - 1: a sentinel, an overflow), and priced it would put
# trillions of dollars on the dashboards. Such a count is unknown (NULL), as is one that is not a
# whole number; the value the client sent stays readable in the span's attributes.
MAX_COUNT: Final = 10**9


def token_count(value: Any) -> int | None:
    """A token count that can be true, else None."""
    if value.__class__ is int:  # what instrumentations send (bool is a subclass, not int)
        return value if 0 <= value <= MAX_COUNT else None
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, float):
        return int(value) if value.is_integer() and 0 <= value <= MAX_COUNT else None
    try:
        count = int(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return count if 0 <= count <= MAX_COUNT else None


# The token counts of pricing.Usage, in its fields' order: the span's attribute for each (the
# cache writes under either of two names, the first found wins).
_USAGE_KEYS = (
    sc.USAGE_INPUT_TOKENS,
    sc.USAGE_OUTPUT_TOKENS,
    sc.USAGE_CACHE_READ_INPUT_TOKENS,
    sc.USAGE_CACHE_CREATION_INPUT_TOKENS,
    sc.USAGE_REASONING_OUTPUT_TOKENS,
    sc.USAGE_AUDIO_INPUT_TOKENS,
    sc.USAGE_AUDIO_OUTPUT_TOKENS,
)
_CACHE_WRITE = 3  # its index; read under sc.USAGE_CACHE_WRITE_INPUT_TOKENS when absent


def usage_of(attrs: dict[str, Any]) -> list[int | None]:
    """The span's token counts, in pricing.Usage's fields' order, in the GenAI convention
    whichever rule the instrumentation followed: where the cache tokens exceed the input tokens,
    the input count left them out (Anthropic's own rule, kept by some instrumentations), so they
    are added to it."""
    # A list, not a pricing.Usage: a frozen dataclass costs more to build than the rest of this
    # (12,000 instructions); an int in range (what instrumentations send) without a call.
    counts = [
        None
        if value is None  # most counts are absent
        else value
        if value.__class__ is int and 0 <= value <= MAX_COUNT
        else token_count(value)
        for value in map(attrs.get, _USAGE_KEYS)
    ]
    if counts[_CACHE_WRITE] is None:
        value = attrs.get(sc.USAGE_CACHE_WRITE_INPUT_TOKENS)
        counts[_CACHE_WRITE] = None if value is None else token_count(value)
    input_tokens, _, cache_read, cache_write = counts[:4]
    if input_tokens is not None and (cache_read or cache_write):
        cached = (cache_read or 0) + (cache_write or 0)
        if cached > input_tokens:
            counts[0] = input_tokens + cached
    return counts


def usage_source(attrs: dict[str, Any], known: bool) -> str:
    """The span's own `assay.usage.source`; for other instrumentations, `reported` when the
    span has token counts (`known`), else `none`."""
    stated = attrs.get(sc.USAGE_SOURCE)
    if isinstance(stated, str) and stated in sc.USAGE_SOURCES:
        return stated
    if attrs.get(sc.USAGE_REPORTED) is False:
        return sc.USAGE_SOURCE_NONE
    return sc.USAGE_SOURCE_REPORTED if known else sc.USAGE_SOURCE_NONE


def call_cost(
    counts: list[int | None],
    model: str,
    provider: str,
    failed: bool,
    reported_cost: float | None,
    finished: bool = False,
) -> CallCost:
    """The cost of a call in the price table in force; else the instrumentation's own figure;
    else NULL with the reason. A failed call is unpriced (COST_FAILED_CALL) before all else,
    unless its answer `finished` (a finish reason came: billed whole), and COST_FAILED_CALL
    whenever it ends unpriced, so that counting it counts the failed unpriced calls."""
    if failed and not finished:
        return None, COST_FAILED_CALL, _UNPRICED, ""
    table = pricing.current()
    known = pricing.usage_known(counts[0], counts[1])
    price = table.lookup(model, provider) if known else None
    if price is not None:
        by_class = pricing.usd_by_class(price, pricing.token_classes(*counts))
        return sum(by_class), COST_PRICED, by_class, table.version
    # A reported 0 for a call that used tokens is an instrumentation that could not price it
    # (OpenLIT offline): unpriced, not free.
    free = reported_cost == 0 and bool(counts[0] or counts[1])
    if reported_cost is not None and not free:
        return reported_cost, COST_REPORTED, _UNPRICED, ""
    if failed:
        return None, COST_FAILED_CALL, _UNPRICED, ""
    return None, COST_UNPRICED_MODEL if known else COST_NO_USAGE, _UNPRICED, ""
