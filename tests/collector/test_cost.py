"""Where each call's numbers came from: cost by token class, cost_source and usage_source, for
Assay's spans and for other instrumentations', and the price table's version on the row."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from assay.collector.normalize.cost import CLASS_COST_COLUMNS, COST_PRICED, call_cost
from assay.collector.normalize.traces import normalize_traces
from assay.collector.schema import LlmCallRow
from assay.instrumentation import pricing
from assay.instrumentation import semconv as sc
from tests.collector.otlp_builders import make_request, make_span


@pytest.fixture(autouse=True)
def _builtin_prices(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(pricing.PRICES_FILE_ENV, raising=False)
    pricing.reload()
    yield
    pricing.reload()


def one_call(attrs: dict[str, Any], error: bool = False) -> LlmCallRow:
    span = make_span(attrs=attrs, error=error)
    (call,) = normalize_traces(make_request("svc", span)).llm_calls
    return call


def chat(provider: str, model: str, **usage: int) -> dict[str, Any]:
    names = {
        "input": sc.USAGE_INPUT_TOKENS,
        "output": sc.USAGE_OUTPUT_TOKENS,
        "cache_read": sc.USAGE_CACHE_READ_INPUT_TOKENS,
        "cache_write": sc.USAGE_CACHE_CREATION_INPUT_TOKENS,
        "reasoning": sc.USAGE_REASONING_OUTPUT_TOKENS,
        "audio_input": sc.USAGE_AUDIO_INPUT_TOKENS,
        "audio_output": sc.USAGE_AUDIO_OUTPUT_TOKENS,
    }
    return {
        sc.OPERATION_NAME: sc.OP_CHAT,
        sc.PROVIDER_NAME: provider,
        sc.REQUEST_MODEL: model,
        **{names[k]: v for k, v in usage.items()},
    }


def class_costs(call: LlmCallRow) -> dict[str, float | None]:
    return {name: getattr(call, column) for name, column in CLASS_COST_COLUMNS.items()}


def per_million(model: str, provider: str) -> dict[str, float]:
    price = pricing.lookup(model, provider)
    assert price is not None, model
    return price.per_token_class()


# Each provider's usage as Assay's instrumentation puts it on the span (the GenAI convention:
# input includes cache reads and writes, output includes reasoning), and the tokens of each
# class that must be billed. The provider's own rule, which the instrumentation normalises, is
# in the comment; docs/cost.md has the table.
PROVIDER_CASES = [
    # OpenAI: prompt_tokens includes prompt_tokens_details.cached_tokens; completion_tokens
    # includes completion_tokens_details.reasoning_tokens and audio_tokens.
    (
        "openai",
        "gpt-4o-mini",
        {"input": 1200, "cache_read": 1000, "output": 300},
        {"input": 200, "cache_read": 1000, "output": 300},
    ),
    ("openai", "o4-mini", {"input": 100, "output": 900, "reasoning": 700}, None),
    (
        "openai",
        "gpt-4o-audio-preview",
        {"input": 500, "audio_input": 400, "output": 300, "audio_output": 250},
        {"input": 100, "audio_input": 400, "output": 50, "audio_output": 250},
    ),
    # Anthropic: input_tokens excludes cache_read_input_tokens and cache_creation_input_tokens;
    # the instrumentation adds them.
    (
        "anthropic",
        "claude-sonnet-4-5",
        {"input": 2050, "cache_read": 1500, "cache_write": 500, "output": 80},
        {"input": 50, "cache_read": 1500, "cache_write": 500, "output": 80},
    ),
    # Bedrock Converse: inputTokens excludes cacheReadInputTokens / cacheWriteInputTokens.
    (
        "aws.bedrock",
        "us.anthropic.claude-3-5-haiku-20241022-v1:0",
        {"input": 1010, "cache_read": 1000, "output": 20},
        {"input": 10, "cache_read": 1000, "output": 20},
    ),
    ("aws.bedrock", "amazon.nova-lite-v1:0", {"input": 40, "output": 12}, None),
    ("aws.bedrock", "meta.llama3-2-1b-instruct-v1:0", {"input": 40, "output": 12}, None),
    # Gemini: promptTokenCount includes cachedContentTokenCount; candidatesTokenCount excludes
    # thoughtsTokenCount, which the instrumentation adds to the output.
    (
        "gcp.gemini",
        "gemini-2.5-flash",
        {"input": 800, "cache_read": 400, "output": 250, "reasoning": 200},
        {"input": 400, "cache_read": 400, "output": 50, "reasoning": 200},
    ),
    # Mistral: OpenAI's shape (prompt_tokens includes cached tokens).
    ("mistral_ai", "mistral-small-latest", {"input": 30, "output": 9}, None),
    # Cohere: billed_units (what is billed), not tokens (with the prompt template's overhead).
    ("cohere", "command-r", {"input": 30, "output": 9}, None),
]


@pytest.mark.parametrize(("provider", "model", "usage", "billed"), PROVIDER_CASES)
def test_each_token_class_is_billed_once_at_its_own_price(
    provider: str, model: str, usage: dict[str, int], billed: dict[str, int] | None
) -> None:
    call = one_call(chat(provider, model, **usage))
    prices = per_million(model, provider)
    billed = billed or {
        "input": usage["input"],
        "output": usage["output"] - usage.get("reasoning", 0),
    }
    billed.setdefault("reasoning", usage.get("reasoning", 0))
    expected = {name: billed.get(name, 0) * prices[name] / 1e6 for name in CLASS_COST_COLUMNS}
    assert class_costs(call) == pytest.approx(expected)
    assert call.cost_usd == pytest.approx(sum(expected.values()))
    assert call.cost_source == "priced" and call.usage_source == "reported"
    assert call.price_version == pricing.current().version


def test_cache_reads_cost_less_and_cache_writes_more_than_uncached_input() -> None:
    prices = per_million("claude-sonnet-4-5", "anthropic")
    assert prices["cache_read"] < prices["input"] < prices["cache_write"]


def test_an_instrumentation_that_left_the_cache_out_of_the_input_is_normalised() -> None:
    # Anthropic's own rule on a foreign span: 50 uncached + 2000 from the cache, input says 50.
    call = one_call(
        chat(
            "anthropic", "claude-sonnet-4-5", input=50, cache_read=1500, output=80, cache_write=500
        )
    )
    assert call.input_tokens == 2050
    assert call.input_cost_usd == pytest.approx(
        50 * per_million("claude-sonnet-4-5", "anthropic")["input"] / 1e6
    )


def test_the_newer_cache_write_name_is_read_too() -> None:
    attrs = chat("anthropic", "claude-sonnet-4-5", input=600, output=10)
    attrs[sc.USAGE_CACHE_WRITE_INPUT_TOKENS] = 500
    call = one_call(attrs)
    assert call.cache_creation_input_tokens == 500
    assert call.cache_write_cost_usd == pytest.approx(
        500 * per_million("claude-sonnet-4-5", "anthropic")["cache_write"] / 1e6
    )


# -- why a call has no cost --------------------------------------------------------


def test_an_unknown_model_is_unpriced_not_free() -> None:
    call = one_call(chat("openai", "my-finetune", input=10, output=5))
    assert (call.cost_usd, call.cost_source, call.price_version) == (None, "unpriced_model", "")
    assert set(class_costs(call).values()) == {None}


def test_a_local_model_is_unpriced_with_its_usage_kept() -> None:
    call = one_call(chat("ollama", "llama3.2", input=10, output=5))
    assert (call.cost_source, call.usage_source, call.input_tokens) == (
        "unpriced_model",
        "reported",
        10,
    )


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        (1_000_000_000, 1_000_000_000),
        (1_000_000_001, None),
        (2**31 - 1, None),  # a sentinel of a broken instrumentation
        (2**63 - 1, None),  # priced, over a trillion dollars on one call
        (12.0, 12),
        (12.7, None),  # not a count
        ("12", 12),
        (-1, None),
    ],
)
def test_a_token_count_no_call_can_have_is_unknown_not_priced(sent: Any, stored: Any) -> None:
    call = one_call(chat("openai", "gpt-4o-mini", input=sent, output=5))
    assert call.input_tokens == stored
    if stored is None:  # the output alone is priced
        assert call.cost_usd is not None and call.cost_usd < 0.01


def test_a_call_without_usage_says_so() -> None:
    attrs = {**chat("openai", "gpt-4o-mini"), sc.USAGE_REPORTED: False}
    call = one_call(attrs)
    assert (call.cost_usd, call.cost_source, call.usage_source) == (None, "no_usage", "none")


def test_a_failed_call_is_unpriced_because_it_failed() -> None:
    attrs = {**chat("openai", "gpt-4o-mini"), sc.ERROR_TYPE: "RateLimitError"}
    call = one_call(attrs, error=True)
    assert (call.status, call.cost_source, call.usage_source) == ("error", "failed_call", "none")


@pytest.mark.parametrize(
    ("model", "finish", "source"),
    [
        ("gpt-4o-mini", [], "failed_call"),  # failed before its answer finished (mid-stream)
        ("gpt-4o-mini", ["length"], "priced"),  # finished, then refused by the client: billed
        ("house-model", ["length"], "failed_call"),  # finished, unpriced: counted as failed
    ],
)
def test_a_failed_call_is_priced_only_when_its_answer_finished(
    model: str, finish: list[str], source: str
) -> None:
    attrs = {
        **chat("openai", model, input=300, output=40),
        sc.ERROR_TYPE: "LengthFinishReasonError",
    }
    if finish:
        attrs[sc.RESPONSE_FINISH_REASONS] = finish
    call = one_call(attrs, error=True)
    assert (call.status, call.cost_source) == ("error", source)
    assert (call.cost_usd is not None) == (source == "priced")
    assert (call.input_tokens, call.output_tokens) == (300, 40)  # its tokens stay either way


def test_the_instrumentations_own_figure_stands_in_and_says_so() -> None:
    attrs = {**chat("openai", "my-finetune", input=10, output=5), sc.COST_USD: 0.25}
    call = one_call(attrs)
    assert (call.cost_usd, call.cost_source, call.reported_cost_usd) == (0.25, "reported", 0.25)


@pytest.mark.parametrize("source", ["reported", "estimated", "none"])
def test_the_spans_usage_source_is_kept(source: str) -> None:
    attrs = {**chat("openai", "gpt-4o-mini", input=10, output=5), sc.USAGE_SOURCE: source}
    call = one_call(attrs)
    assert call.usage_source == source
    assert sc.USAGE_SOURCE not in call.attributes


def test_an_unknown_usage_source_is_inferred_from_the_tokens() -> None:
    attrs = {**chat("openai", "gpt-4o-mini", input=10, output=5), sc.USAGE_SOURCE: "guessed"}
    assert one_call(attrs).usage_source == "reported"


def test_another_instrumentations_span_with_tokens_has_reported_usage() -> None:
    attrs = {
        "openinference.span.kind": "LLM",
        "llm.model_name": "gpt-4o-mini",
        "llm.provider": "openai",
        "llm.token_count.prompt": 20,
        "llm.token_count.completion": 5,
    }
    call = one_call(attrs)
    assert (call.dialect, call.usage_source, call.cost_source) == (
        "openinference",
        "reported",
        "priced",
    )


def test_the_collectors_pricing_agrees_with_the_price_tables_to_the_last_bit() -> None:
    """`call_cost` prices without pricing.Usage and pricing.Cost (their building was most of
    normalizing a call): for every model of the table and usages of every shape, the same floats
    as `PriceTable.cost`, total and classes, or None where it gives None."""
    table = pricing.current()
    shapes = [
        (1200, 300, None, None, None, None, None),
        (1200, 300, 1000, None, None, None, None),
        (2050, 80, 1500, 500, None, None, None),
        (10, 20, 1000, 7, None, None, None),  # parts larger than the total: clamped at 0
        (500, 300, None, None, None, 400, 250),
        (100, 900, None, None, 700, None, None),
        (3, 5, 0, 0, 9, 1, 2),
        (0, 0, None, None, None, None, None),
        (None, 17, None, None, None, None, None),
        (17, None, None, None, None, None, None),
        (None, None, 5, None, None, None, None),  # no input or output: usage unknown
        (2**63, 2**62, 2**40, 3, 2**50, 11, 13),
    ]
    for key, price in table.models.items():
        for counts in shapes:
            expected = table.cost(pricing.Usage(*counts), key, price.provider)
            found = call_cost(list(counts), key, price.provider, False, None)
            if expected is None:
                assert found[0] is None and found[1] != COST_PRICED, (key, counts)
                continue
            by_class = tuple(expected.by_class[name] for name in CLASS_COST_COLUMNS)
            assert found == (expected.total, COST_PRICED, by_class, table.version), (key, counts)
