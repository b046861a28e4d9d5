"""Model list prices (prices.json plus user overrides) and the cost of one LLM call.

Token convention (OpenTelemetry GenAI): ``input_tokens`` counts every prompt token,
cache reads and cache writes included, for every provider. OpenAI and Google report
usage that way; the Anthropic instrumentation adds ``cache_read_input_tokens`` and
``cache_creation_input_tokens`` to Anthropic's ``input_tokens`` before calling here.
So a call costs::

    (input - cached - cache_creation) * input
    + cached * cached_input            (input price when the model has none)
    + cache_creation * cache_write     (input price when the model has none)
    + output * output                  all divided by 1e6

An unknown model, or unknown usage, costs ``None`` and never 0: a zero would hide
spend, a NULL shows up as "unpriced".

The table ships with the package and is read lazily on first use, never at import
and never from the network. ``ASSAY_PRICES_FILE`` names a JSON file of the same
shape (only ``"models"`` is needed) whose entries add models or replace fields of
built-in ones; a broken file logs one warning and the built-in table is used.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import re
import threading
from dataclasses import dataclass, replace
from importlib.resources import files
from pathlib import Path
from typing import Any

__all__ = ["PRICES_FILE_ENV", "ModelPrice", "cost_usd", "lookup", "prices_taken", "reload"]

PRICES_FILE_ENV = "ASSAY_PRICES_FILE"

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelPrice:
    """List price of one model, in USD per 1M tokens."""

    model: str  # the table key that matched
    provider: str
    input: float
    output: float
    cached_input: float | None = None
    cache_write: float | None = None


@dataclass(frozen=True)
class _Table:
    taken: str
    models: dict[str, ModelPrice]


_table: _Table | None = None
_table_lock = threading.Lock()


def lookup(model: str | None, provider: str | None = None) -> ModelPrice | None:
    """The price of ``model``, or None when the table does not know it.

    Tried in order, case-insensitively: an exact key (``provider/model`` first when a
    provider is given, so an override can price one provider's deployment apart);
    the name without a routing prefix (``openai/``, ``models/``, ``us.anthropic.``);
    the name without snapshot suffixes (``-2024-08-06``, ``-20241022``, ``-latest``,
    ``@20240620``, ``-001``, ``-v2:0``); finally the longest key that is a prefix of
    the name at a ``-`` boundary (``gpt-4o-mini-search-preview`` → ``gpt-4o-mini``).
    A self-hosted provider's models (Ollama) match only an exact ``provider/model`` key.
    """
    if not model:
        return None
    return _lookup(model, provider)


def cost_usd(
    model: str | None,
    input_tokens: int | None,
    output_tokens: int | None,
    cached_input_tokens: int | None = None,
    cache_creation_input_tokens: int | None = None,
    provider: str | None = None,
) -> float | None:
    """USD cost of one call; None for an unknown model or unknown usage, never 0 for those.

    ``input_tokens`` includes ``cached_input_tokens`` (cache reads) and
    ``cache_creation_input_tokens`` (cache writes), whatever the provider.
    """
    if input_tokens is None and output_tokens is None:
        return None
    price = lookup(model, provider)
    if price is None:
        return None
    cached = max(cached_input_tokens or 0, 0)
    written = max(cache_creation_input_tokens or 0, 0)
    uncached = max((input_tokens or 0) - cached - written, 0)
    cached_price = price.input if price.cached_input is None else price.cached_input
    write_price = price.input if price.cache_write is None else price.cache_write
    total = (
        uncached * price.input
        + cached * cached_price
        + written * write_price
        + max(output_tokens or 0, 0) * price.output
    )
    return total / 1_000_000


def prices_taken() -> str:
    """The date (ISO ``YYYY-MM-DD``) on which the built-in prices were taken."""
    return _get_table().taken


def reload() -> None:
    """Drop the loaded table and every cached lookup; the next call reads them again."""
    global _table
    with _table_lock:
        _table = None
        _lookup.cache_clear()


# -- matching ---------------------------------------------------------------------

# Cloud routing prefixes that come before a model id without a slash:
# Bedrock's "anthropic.claude-...", with an optional region "us." / "eu." / "global.".
_VENDOR_DOT_PREFIX = re.compile(
    r"^(?:[a-z]{2,6}(?:-[a-z]+)?\.)?"
    r"(?:anthropic|cohere|mistral|meta|amazon|ai21|openai|google|deepseek|qwen)\."
)
# Snapshot suffixes, stripped one at a time from the end, longest forms first.
_SNAPSHOT_SUFFIXES = (
    re.compile(r"@[\w.-]*$"),  # Vertex: claude-3-5-sonnet@20240620, gemini-1.5-pro@002
    re.compile(r"(?:-v\d+)?(?::\d+[a-z]*)+$"),  # Bedrock: -v2:0, -v1:0:200k
    re.compile(r"-v\d+$"),  # Vertex: claude-3-5-sonnet-v2
    re.compile(r"-\d{4}-\d{2}-\d{2}$"),  # OpenAI: -2024-08-06
    re.compile(r"-\d{8}$"),  # Anthropic: -20241022
    re.compile(r"-\d{2}-\d{4}$"),  # Cohere: -08-2024
    re.compile(r"-\d{3,4}$"),  # Mistral -2411, OpenAI -0613, Google -001
    re.compile(r"-latest$"),
)
# After a prefix match, a following segment that names another version or size of
# the model (claude-opus-4-8, gpt-4-32k, a future gpt-5.5-mini) would get the wrong
# price: such names stay unpriced. "-0" is the same version (claude-opus-4-0).
_OTHER_MODEL_SEGMENT = re.compile(
    r"(?:[1-9]\d?|\d+\.\d+|\d+(?:\.\d+)?[bkm]"
    r"|mini|nano|lite|pro|max|plus|turbo|light|flash|large|medium|small|tiny)"
)
# Providers that serve models on the user's own hardware: a local "mistral-small:24b" is not
# billed at Mistral's list price. Only an explicit `provider/model` override prices them.
_SELF_HOSTED_PROVIDERS = frozenset({"ollama"})
_DOT_BETWEEN_DIGITS = re.compile(r"(?<=\d)\.(?=\d)")
_MAX_SUFFIXES = 4


@functools.lru_cache(maxsize=2048)
def _lookup(model: str, provider: str | None) -> ModelPrice | None:
    models = _get_table().models
    name = model.strip().lower()
    if provider:
        provider = provider.strip().lower()
        hit = models.get(f"{provider}/{name}")
        if hit is not None or provider in _SELF_HOSTED_PROVIDERS:
            return hit
    hit = models.get(name)
    if hit is not None:
        return hit

    name = _VENDOR_DOT_PREFIX.sub("", name.rsplit("/", 1)[-1])
    if name.startswith("claude"):
        # OpenRouter and others spell claude-3-5-sonnet as claude-3.5-sonnet.
        name = _DOT_BETWEEN_DIGITS.sub("-", name)
    hit = models.get(name)
    if hit is not None:
        return hit

    for _ in range(_MAX_SUFFIXES):
        for suffix in _SNAPSHOT_SUFFIXES:
            stripped = suffix.sub("", name, count=1)
            if stripped != name and stripped:
                name = stripped
                break
        else:
            break
        hit = models.get(name)
        if hit is not None:
            return hit

    return _longest_prefix(name, models)


def _longest_prefix(name: str, models: dict[str, ModelPrice]) -> ModelPrice | None:
    end = name.rfind("-")
    while end > 0:
        hit = models.get(name[:end])
        if hit is not None:
            following = name[end + 1 :].split("-", 1)[0]
            return None if _OTHER_MODEL_SEGMENT.fullmatch(following) else hit
        end = name.rfind("-", 0, end)
    return None


# -- loading ----------------------------------------------------------------------


def _get_table() -> _Table:
    global _table
    table = _table
    if table is None:
        with _table_lock:
            if _table is None:
                _table = _load()
            table = _table
    return table


def _load() -> _Table:
    try:
        raw = json.loads(
            (files("assay.instrumentation") / "prices.json").read_text(encoding="utf-8")
        )
        taken = str(raw["taken"])
        models = _parse_models(raw["models"], {})
    except Exception:
        # A packaging fault must not break the host application: everything is unpriced.
        _log.exception("Cannot read the built-in price table; every cost will be NULL")
        return _Table(taken="", models={})

    path = os.environ.get(PRICES_FILE_ENV, "").strip()
    if path:
        try:
            raw = json.loads(Path(path).expanduser().read_text(encoding="utf-8"))
            if not isinstance(raw, dict) or "models" not in raw:
                raise ValueError('expected a JSON object with a "models" object')
            models = {**models, **_parse_models(raw["models"], models)}
        except (OSError, ValueError, TypeError) as exc:
            _log.warning(
                "Ignoring price overrides from %s=%s (%s); using the built-in prices",
                PRICES_FILE_ENV,
                path,
                exc,
            )
    return _Table(taken=taken, models=models)


def _parse_models(entries: Any, base: dict[str, ModelPrice]) -> dict[str, ModelPrice]:
    """Validated prices keyed by lower-case name; an entry for a ``base`` model
    replaces only the fields it names."""
    if not isinstance(entries, dict):
        raise TypeError('"models" must be a JSON object')
    parsed: dict[str, ModelPrice] = {}
    for raw_key, entry in entries.items():
        key = str(raw_key).strip().lower()
        if not key or not isinstance(entry, dict):
            raise ValueError(f"model {raw_key!r}: expected a non-empty name and an object")
        known = base.get(key)
        if known is None:
            parsed[key] = ModelPrice(
                model=key,
                provider=_provider(key, entry.get("provider", _provider_from_key(key))),
                input=_price(key, "input", entry.get("input")),
                output=_price(key, "output", entry.get("output")),
                cached_input=_optional_price(key, "cached_input", entry.get("cached_input")),
                cache_write=_optional_price(key, "cache_write", entry.get("cache_write")),
            )
            continue
        changes: dict[str, Any] = {}
        if "provider" in entry:
            changes["provider"] = _provider(key, entry["provider"])
        for field in ("input", "output"):
            if field in entry:
                changes[field] = _price(key, field, entry[field])
        for field in ("cached_input", "cache_write"):
            if field in entry:
                changes[field] = _optional_price(key, field, entry[field])
        parsed[key] = replace(known, **changes)
    return parsed


def _provider_from_key(key: str) -> str:
    # Overrides may leave the provider out; "azure/gpt-4o" still says whose it is.
    return key.split("/", 1)[0] if "/" in key else "unknown"


def _provider(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"model {key!r}: provider must be a non-empty string")
    return value.strip().lower()


def _price(key: str, field: str, value: Any) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
    ):
        raise ValueError(f"model {key!r}: {field} must be a number >= 0, got {value!r}")
    return float(value)


def _optional_price(key: str, field: str, value: Any) -> float | None:
    return None if value is None else _price(key, field, value)
