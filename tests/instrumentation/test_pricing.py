"""The price table and the cost of one call: matching, cache-aware cost, overrides."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path

import pytest

from assay.instrumentation import pricing
from assay.instrumentation.pricing import ModelPrice, cost_usd, lookup, prices_taken, reload

# The issue's providers, and Together (in the recorded traffic, reached through the OpenAI client)
PROVIDERS = {"openai", "anthropic", "google", "mistral", "cohere", "aws.bedrock", "together_ai"}


@pytest.fixture(autouse=True)
def _fresh_table(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(pricing.PRICES_FILE_ENV, raising=False)
    reload()
    yield
    monkeypatch.delenv(pricing.PRICES_FILE_ENV, raising=False)
    reload()


def _builtin_table() -> dict:
    text = (files("assay.instrumentation") / "prices.json").read_text(encoding="utf-8")
    return json.loads(text)


def _builtin_price_of(model: str) -> ModelPrice:
    entry = _builtin_table()["models"][model]
    return ModelPrice(model=model, **{k: v for k, v in entry.items() if k != "note"})


def _price(model: str) -> ModelPrice:
    price = lookup(model)
    assert price is not None, f"{model} should be in the price table"
    return price


def _use_overrides(monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    monkeypatch.setenv(pricing.PRICES_FILE_ENV, str(path))
    reload()


# -- the table -------------------------------------------------------------------


def test_every_entry_has_a_provider_and_sane_prices() -> None:
    models = _builtin_table()["models"]
    assert models
    for name, entry in models.items():
        assert name == name.lower(), name
        assert entry["provider"] in PROVIDERS, name
        assert entry["input"] >= 0, name
        assert entry["output"] >= 0, name
        if "cached_input" in entry:
            assert 0 <= entry["cached_input"] <= entry["input"], name
        if "cache_write" in entry:
            assert entry["cache_write"] >= entry["input"], name


def test_every_provider_of_the_issue_is_covered() -> None:
    providers = {entry["provider"] for entry in _builtin_table()["models"].values()}
    assert providers == PROVIDERS


def test_anthropic_models_carry_cache_read_and_cache_write_prices() -> None:
    for name, entry in _builtin_table()["models"].items():
        if entry["provider"] == "anthropic":
            assert "cached_input" in entry and "cache_write" in entry, name


def test_embedding_models_price_input_only() -> None:
    for name in ("text-embedding-3-small", "text-embedding-3-large", "text-embedding-ada-002"):
        assert _price(name).output == 0
        assert _price(name).input > 0


def test_prices_taken_is_an_iso_date() -> None:
    taken = prices_taken()
    assert dt.date.fromisoformat(taken).isoformat() == taken
    assert taken == _builtin_table()["taken"]


# -- matching model names ----------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("gpt-4o", "gpt-4o"),
        ("GPT-4o", "gpt-4o"),
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-4o-2024-11-20", "gpt-4o"),
        ("gpt-4.1-mini-2025-04-14", "gpt-4.1-mini"),
        ("o3-mini-2025-01-31", "o3-mini"),
        ("gpt-4-0613", "gpt-4"),
        ("claude-3-5-sonnet-20241022", "claude-3-5-sonnet"),
        ("claude-3-5-sonnet-latest", "claude-3-5-sonnet"),
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
        ("claude-opus-4-1-20250805", "claude-opus-4-1"),
        ("claude-opus-4-0", "claude-opus-4"),
        ("claude-3-5-sonnet@20240620", "claude-3-5-sonnet"),
        ("claude-3-5-sonnet-v2@20241022", "claude-3-5-sonnet"),
        ("gemini-1.5-pro-002", "gemini-1.5-pro"),
        ("gemini-2.5-flash-preview-05-20", "gemini-2.5-flash"),
        ("mistral-large-latest", "mistral-large"),
        ("codestral-2501", "codestral"),
        ("command-r-plus-08-2024", "command-r-plus"),
        ("command-a-03-2025", "command-a"),
    ],
)
def test_dated_and_aliased_variants_match_their_model(name: str, key: str) -> None:
    assert _price(name).model == key


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("openai/gpt-4o-mini", "gpt-4o-mini"),
        ("azure/gpt-4.1", "gpt-4.1"),
        ("models/gemini-2.0-flash-001", "gemini-2.0-flash"),
        ("anthropic/claude-3.5-sonnet", "claude-3-5-sonnet"),
        ("anthropic.claude-3-5-sonnet-20241022-v2:0", "claude-3-5-sonnet"),
        ("us.anthropic.claude-sonnet-4-20250514-v1:0", "claude-sonnet-4"),
        ("cohere.command-r-plus-v1:0", "command-r-plus"),
    ],
)
def test_provider_prefixes_and_cloud_ids_are_stripped(name: str, key: str) -> None:
    assert _price(name).model == key


def test_longest_prefix_wins_so_mini_is_not_priced_as_the_big_model() -> None:
    assert _price("gpt-4o-mini-2024-07-18").model == "gpt-4o-mini"
    assert _price("gpt-4o-mini-search-preview").model == "gpt-4o-mini"
    assert _price("gpt-4o-search-preview").model == "gpt-4o"
    assert _price("gpt-4o-mini").input < _price("gpt-4o").input
    assert _price("gemini-2.5-flash-lite-preview-06-17").model == "gemini-2.5-flash-lite"


def test_a_snapshot_with_its_own_price_keeps_it() -> None:
    assert _price("gpt-4o-2024-05-13").model == "gpt-4o-2024-05-13"
    assert _price("gpt-4o-2024-05-13").input > _price("gpt-4o-2024-08-06").input
    assert _price("mistral-large-2411").input != _price("mistral-large-latest").input


@pytest.mark.parametrize(
    "name",
    [
        "claude-opus-4-9",  # a newer version is not the old one's price
        "gpt-4-32k",  # another context size, another price
        "gpt-5.5-mini",  # a smaller sibling is not the big model
        "gemini-2.5-flash-8b",  # a parameter count names another model
        "mistral-medium-3",  # so does a bare version number
    ],
)
def test_a_prefix_never_prices_another_version_or_size(name: str) -> None:
    assert lookup(name) is None


@pytest.mark.parametrize("name", [None, "", "my-own-model", "ft:gpt-4o-mini:acme::abc123"])
def test_unknown_models_have_no_price(name: str | None) -> None:
    assert lookup(name) is None


def test_lookups_of_the_same_name_are_cached() -> None:
    assert lookup("gpt-4o-2024-08-06") is lookup("gpt-4o-2024-08-06")


# -- cost --------------------------------------------------------------------------


def test_openai_call_with_cached_prompt_tokens() -> None:
    # OpenAI: prompt_tokens already include prompt_tokens_details.cached_tokens.
    price = _price("gpt-4o")
    assert price.cached_input is not None
    cost = cost_usd(
        "gpt-4o-2024-08-06", input_tokens=10_000, output_tokens=500, cached_input_tokens=8_000
    )
    expected = (2_000 * price.input + 8_000 * price.cached_input + 500 * price.output) / 1e6
    assert cost == pytest.approx(expected)
    uncached = cost_usd("gpt-4o", input_tokens=10_000, output_tokens=500)
    assert cost is not None and uncached is not None and cost < uncached


def test_anthropic_call_with_cache_read_and_cache_write() -> None:
    # Anthropic reports input_tokens=1_000, cache_read=6_000, cache_creation=3_000;
    # its instrumentation passes input_tokens as their sum, 10_000.
    price = _price("claude-sonnet-4-5")
    assert price.cached_input is not None and price.cache_write is not None
    cost = cost_usd(
        "claude-sonnet-4-5-20250929",
        input_tokens=10_000,
        output_tokens=400,
        cached_input_tokens=6_000,
        cache_creation_input_tokens=3_000,
    )
    expected = (
        1_000 * price.input
        + 6_000 * price.cached_input
        + 3_000 * price.cache_write
        + 400 * price.output
    ) / 1e6
    assert cost == pytest.approx(expected)


def test_cache_write_on_bedrock_costs_the_same_as_direct() -> None:
    direct = cost_usd("claude-3-5-haiku-20241022", 5_000, 100, 0, 4_000)
    bedrock = cost_usd("anthropic.claude-3-5-haiku-20241022-v1:0", 5_000, 100, 0, 4_000)
    assert direct is not None and direct == pytest.approx(bedrock)


def test_google_call_with_cached_content() -> None:
    # Gemini: prompt_token_count includes cached_content_token_count.
    price = _price("gemini-2.5-flash")
    assert price.cached_input is not None
    cost = cost_usd("gemini-2.5-flash", 4_000, 1_000, cached_input_tokens=3_000)
    expected = (1_000 * price.input + 3_000 * price.cached_input + 1_000 * price.output) / 1e6
    assert cost == pytest.approx(expected)


def test_cached_tokens_without_a_cache_price_cost_the_input_price() -> None:
    price = _price("command-r-plus")
    assert price.cached_input is None and price.cache_write is None
    assert cost_usd("command-r-plus", 1_000, 10, 600, 300) == pytest.approx(
        (1_000 * price.input + 10 * price.output) / 1e6
    )


def test_cached_tokens_beyond_the_input_count_never_make_a_negative_part() -> None:
    price = _price("gpt-4o")
    assert price.cached_input is not None
    cost = cost_usd("gpt-4o", input_tokens=100, output_tokens=0, cached_input_tokens=500)
    assert cost == pytest.approx(500 * price.cached_input / 1e6)
    assert cost is not None and cost >= 0


def test_embedding_call_costs_its_input() -> None:
    price = _price("text-embedding-3-small")
    assert cost_usd("text-embedding-3-small", 2_000, None) == pytest.approx(
        2_000 * price.input / 1e6
    )


def test_a_known_model_with_zero_tokens_costs_zero() -> None:
    assert cost_usd("gpt-4o-mini", 0, 0) == 0


def test_unknown_model_costs_none_not_zero() -> None:
    assert cost_usd("some-new-model-2031", 1_000, 1_000) is None
    assert cost_usd(None, 1_000, 1_000) is None


def test_unknown_usage_costs_none_not_zero() -> None:
    assert cost_usd("gpt-4o", None, None) is None
    assert cost_usd("gpt-4o", None, None, cached_input_tokens=100) is None


# -- overrides ---------------------------------------------------------------------


def test_override_file_adds_a_model_and_replaces_a_price(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    builtin = _price("gpt-4o")
    path = tmp_path / "prices.json"
    path.write_text(
        json.dumps(
            {
                "models": {
                    "acme-llm": {"provider": "acme", "input": 1.0, "output": 2.0},
                    "gpt-4o": {"input": 2.0},
                }
            }
        )
    )
    _use_overrides(monkeypatch, path)

    acme = _price("acme-llm-2025-01-01")
    assert (acme.provider, acme.input, acme.output) == ("acme", 1.0, 2.0)
    assert cost_usd("acme-llm", 1_000_000, 1_000_000) == pytest.approx(3.0)
    gpt = _price("gpt-4o-2024-08-06")
    assert gpt.input == 2.0
    assert (gpt.output, gpt.cached_input) == (builtin.output, builtin.cached_input)
    assert _price("claude-3-haiku") == _builtin_price_of("claude-3-haiku")


def test_override_can_price_one_providers_deployment_apart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"models": {"azure.ai.openai/gpt-4o": {"input": 3, "output": 11}}}))
    _use_overrides(monkeypatch, path)

    assert _price("gpt-4o").input == _builtin_price_of("gpt-4o").input
    deployment = lookup("gpt-4o", provider="azure.ai.openai")
    assert deployment is not None and (deployment.input, deployment.output) == (3, 11)


def test_self_hosted_models_are_unpriced_unless_an_override_prices_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An Ollama model named like an API model runs on the user's own hardware.
    assert lookup("mistral-small:24b") is not None
    assert lookup("mistral-small:24b", provider="ollama") is None
    assert pricing.cost_usd("llama3.2", 100, 100, provider="ollama") is None

    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"models": {"ollama/llama3.2": {"input": 0.01, "output": 0.02}}}))
    _use_overrides(monkeypatch, path)
    assert pricing.cost_usd("llama3.2", 1_000_000, 0, provider="ollama") == pytest.approx(0.01)


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        json.dumps(["gpt-4o"]),
        json.dumps({"models": {"gpt-4o": {"input": "cheap"}}}),
        json.dumps({"models": {"acme-llm": {"provider": "acme", "input": -1, "output": 1}}}),
        json.dumps({"models": {"acme-llm": {"provider": "acme", "input": 1}}}),
    ],
)
def test_broken_override_file_warns_once_and_keeps_builtin_prices(
    content: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    path = tmp_path / "prices.json"
    path.write_text(content)
    _use_overrides(monkeypatch, path)

    with caplog.at_level(logging.WARNING, logger=pricing.__name__):
        assert _price("gpt-4o") == _builtin_price_of("gpt-4o")
        assert cost_usd("gpt-4o-mini", 1_000, 100) is not None
        assert lookup("acme-llm") is None
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert str(path) in warnings[0].getMessage()


def test_missing_override_file_warns_and_keeps_builtin_prices(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _use_overrides(monkeypatch, tmp_path / "absent.json")
    with caplog.at_level(logging.WARNING, logger=pricing.__name__):
        assert _price("gpt-4o") == _builtin_price_of("gpt-4o")
    assert len(caplog.records) == 1


def test_override_is_read_on_first_use_after_reload(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert lookup("acme-llm") is None
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"models": {"acme-llm": {"input": 1, "output": 1}}}))
    monkeypatch.setenv(pricing.PRICES_FILE_ENV, str(path))
    assert lookup("acme-llm") is None  # cached until reload()
    reload()
    assert _price("acme-llm").input == 1


def test_a_table_remembers_its_own_lookups_and_prices() -> None:
    base = pricing.current()
    found = base.lookup("GPT-4o-2024-08-06", "openai")
    assert found is not None and base.lookup("GPT-4o-2024-08-06", "openai") is found
    usage = pricing.Usage(input=1_000_000, output=0)
    assert base.cost(usage, "gpt-4o", "openai").total == found.input  # type: ignore[union-attr]
    cheaper = base.overlaid({"models": {"gpt-4o": {"input": found.input / 2}}}, "test")
    assert cheaper.lookup("GPT-4o-2024-08-06", "openai").input == found.input / 2  # type: ignore[union-attr]
    assert cheaper.cost(usage, "gpt-4o", "openai").total == found.input / 2  # type: ignore[union-attr]
    assert base.lookup("GPT-4o-2024-08-06", "openai") is found
    assert base.cost(usage, "gpt-4o", "openai").total == found.input  # type: ignore[union-attr]
