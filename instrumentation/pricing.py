"""Model list prices (prices.json plus user overrides) and the cost of one LLM call, by token class.

Token convention (OpenTelemetry GenAI): ``input_tokens`` counts every prompt token, cache
reads, cache writes and audio included; ``output_tokens`` every generated token, reasoning and
audio included. OpenAI, Google, Mistral and Cohere report usage that way; Anthropic's own
``input_tokens`` leaves the cache out, so the Anthropic (and Bedrock) instrumentations add
``cache_read_input_tokens`` and ``cache_creation_input_tokens`` before calling here.
The call is split into token classes, each priced on its own (``TOKEN_CLASSES``)::

    input         input - cache_read - cache_write - audio_input   at input
    cache_read    cache_read                                       at cached_input (else input)
    cache_write   cache_write                                      at cache_write (else input)
    audio_input   audio_input                                      at audio_input (else input)
    output        output - reasoning - audio_output                at output
    reasoning     reasoning                                        at reasoning (else output)
    audio_output  audio_output                                     at audio_output (else output)

all per 1M tokens. An unknown model, or unknown usage, costs ``None`` and never 0: a zero
would hide spend, a NULL shows up as "unpriced".

The table ships with the package and is read lazily on first use, never at import and never
from the network. ``ASSAY_PRICES_FILE`` names a JSON file of the same shape (only
``"models"`` is needed) whose entries add models or replace fields of built-in ones; a broken
file logs one warning and the built-in table is used. Each table has a ``version``: the date
its prices were taken and a digest of its content, so a stored cost names the prices it used.
A process that prices on behalf of others (the collector) can put another table in force
with ``activate``.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import math
import os
import re
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from importlib.resources import files
from pathlib import Path
from typing import Any

__all__ = [
    "PRICES_FILE_ENV",
    "TOKEN_CLASSES",
    "UNPRICED_CALLS",
    "Cost",
    "ModelPrice",
    "PriceTable",
    "PriceTableError",
    "Usage",
    "activate",
    "builtin_table",
    "cost_usd",
    "current",
    "lookup",
    "prices_taken",
    "reload",
]

PRICES_FILE_ENV = "ASSAY_PRICES_FILE"

# What every count of unpriced calls counts, wherever one is shown (the collector's rollups, pages
# and panels; an experiment's items, runs and comparisons): calls whose cost is unknown (NULL),
# whatever the reason (collector/normalize/cost.py's cost_source says which). Said where such a
# count is shown. Here, the package every part of Assay imports, so it is written once.
UNPRICED_CALLS = (
    "calls without a cost: a model the price table lacks, no token usage reported, or a failed "
    "call (rarely billed)"
)

_log = logging.getLogger(__name__)

# Each token class, and the ModelPrice field priced for it, then the field used when that one
# is absent. The order is the order of the cost columns everywhere.
TOKEN_CLASSES: tuple[tuple[str, str, str], ...] = (
    ("input", "input", "input"),
    ("cache_read", "cached_input", "input"),
    ("cache_write", "cache_write", "input"),
    ("audio_input", "audio_input", "input"),
    ("output", "output", "output"),
    ("reasoning", "reasoning", "output"),
    ("audio_output", "audio_output", "output"),
)


class PriceTableError(ValueError):
    """A price file that cannot be used; the message says which entry and why."""


@dataclass(frozen=True)
class ModelPrice:
    """List price of one model, in USD per 1M tokens (None: billed at the fallback price)."""

    model: str  # the table key that matched
    provider: str
    input: float
    output: float
    cached_input: float | None = None
    cache_write: float | None = None
    reasoning: float | None = None
    audio_input: float | None = None
    audio_output: float | None = None
    # Batch API prices, where published: shown by `assay prices`, not used for live calls.
    batch_input: float | None = None
    batch_output: float | None = None

    def per_token_class(self) -> dict[str, float]:
        """USD per 1M tokens of each token class, fallbacks applied."""
        # getattr, not asdict: asdict deep-copies every field, and the collector prices every
        # call it stores with this (it was half of normalizing an LLM span).
        prices = {name: getattr(self, field) for name, field, _ in TOKEN_CLASSES}
        return {
            name: price if price is not None else getattr(self, fallback)
            for (name, _, fallback), price in zip(TOKEN_CLASSES, prices.values(), strict=True)
        }

    @functools.cached_property
    def usd_per_million(self) -> Mapping[str, float]:
        """`per_token_class()`, worked out once: a price never changes, and every priced call
        reads it (do not modify it)."""
        return self.per_token_class()


_OPTIONAL_FIELDS = tuple(
    f.name for f in fields(ModelPrice) if f.name not in ("model", "provider", "input", "output")
)


@dataclass(frozen=True)
class Usage:
    """Token counts of one call in the OpenTelemetry GenAI convention (totals include parts)."""

    input: int | None = None
    output: int | None = None
    cache_read: int | None = None
    cache_write: int | None = None
    reasoning: int | None = None
    audio_input: int | None = None
    audio_output: int | None = None

    @property
    def known(self) -> bool:
        return usage_known(self.input, self.output)

    def by_token_class(self) -> dict[str, int]:
        """Tokens of each class; a part larger than its total is clamped, never negative."""
        return dict(zip(_CLASS_NAMES, token_classes(*self.counts()), strict=True))

    def counts(self) -> tuple[int | None, ...]:
        """The counts in the fields' order (what `token_classes` takes)."""
        return (
            self.input,
            self.output,
            self.cache_read,
            self.cache_write,
            self.reasoning,
            self.audio_input,
            self.audio_output,
        )


def usage_known(input_tokens: int | None, output_tokens: int | None) -> bool:
    """Whether a call's usage is known: a cost is never made up from no counts at all."""
    return input_tokens is not None or output_tokens is not None


_CLASS_NAMES = tuple(name for name, _, _ in TOKEN_CLASSES)


def token_classes(
    input_tokens: int | None,
    output_tokens: int | None,
    cache_read_tokens: int | None,
    cache_write_tokens: int | None,
    reasoning_tokens: int | None,
    audio_input_tokens: int | None,
    audio_output_tokens: int | None,
) -> tuple[int, ...]:
    """Tokens of each class in TOKEN_CLASSES' order, from counts in `Usage`'s fields' order; a
    part larger than its total is clamped, never negative."""
    cache_read, cache_write = _n(cache_read_tokens), _n(cache_write_tokens)
    audio_in, reasoning, audio_out = (
        _n(audio_input_tokens),
        _n(reasoning_tokens),
        _n(audio_output_tokens),
    )
    rest_in = _n(input_tokens) - cache_read - cache_write - audio_in
    rest_out = _n(output_tokens) - reasoning - audio_out
    return (
        0 if rest_in < 0 else rest_in,
        cache_read,
        cache_write,
        audio_in,
        0 if rest_out < 0 else rest_out,
        reasoning,
        audio_out,
    )


def _n(value: int | None) -> int:
    """A token count, 0 when absent or negative (the collector prices every call it stores
    with this: a conditional, not `max`, which costs more than the arithmetic)."""
    return value if value is not None and value > 0 else 0


@dataclass(frozen=True)
class Cost:
    """The cost of one call: USD per token class, their total, and the table that priced it."""

    by_class: dict[str, float]
    total: float
    model: str  # the table key that matched
    version: str


@dataclass(frozen=True, eq=False)  # compared (and cached) by identity
class PriceTable:
    """One price table in force: its models, the date its prices were taken, its version."""

    taken: str
    models: Mapping[str, ModelPrice]
    version: str
    # What `lookup` found for each (model, provider) asked: the collector prices every call it
    # stores, and a lookup tries several spellings. Bounded, as model names come from clients;
    # it goes with the table when another is activated.
    _found: dict[tuple[str, str | None], ModelPrice | None] = dataclasses.field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @classmethod
    def of(cls, taken: str, models: Mapping[str, ModelPrice]) -> PriceTable:
        """A table whose version is its date and a digest of its prices (same prices, same
        version, in every process)."""
        canonical = json.dumps(
            {key: asdict(price) for key, price in sorted(models.items())}, sort_keys=True
        )
        digest = hashlib.sha256(canonical.encode()).hexdigest()[:10]
        return cls(taken=taken, models=dict(models), version=f"{taken}.{digest}")

    def overlaid(self, raw: Any, origin: str) -> PriceTable:
        """This table with a price file's entries added or replacing fields of known models.

        Raises PriceTableError, naming `origin`, when the file is no valid price file."""
        if not isinstance(raw, dict) or "models" not in raw:
            raise PriceTableError(f'{origin}: expected a JSON object with a "models" object')
        try:
            models = {**self.models, **_parse_models(raw["models"], self.models)}
        except (TypeError, ValueError) as exc:
            raise PriceTableError(f"{origin}: {exc}") from exc
        taken = str(raw.get("taken") or self.taken)
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", taken):
            raise PriceTableError(f'{origin}: "taken" must be a date YYYY-MM-DD, got {taken!r}')
        return PriceTable.of(max(taken, self.taken), models)

    def lookup(self, model: str | None, provider: str | None = None) -> ModelPrice | None:
        """The price of `model`, or None when the table does not know it (see `lookup`)."""
        if not model:
            return None
        key = (model, provider)
        try:
            return self._found[key]
        except KeyError:
            pass
        price = _lookup(self, model, provider)
        if len(self._found) >= _FOUND_LIMIT:
            self._found.clear()
        self._found[key] = price
        return price

    def cost(self, usage: Usage, model: str | None, provider: str | None = None) -> Cost | None:
        """The cost of a call; None for an unknown model or unknown usage, never 0 for those."""
        if not usage.known:
            return None
        price = self.lookup(model, provider)
        if price is None:
            return None
        by_class = usd_by_class(price, token_classes(*usage.counts()))
        return Cost(
            dict(zip(_CLASS_NAMES, by_class, strict=True)), sum(by_class), price.model, self.version
        )

    def to_json(self) -> dict[str, Any]:
        """The table as a price file (what `assay prices` shows and a store keeps)."""
        return {
            "taken": self.taken,
            "version": self.version,
            "unit": "USD per 1M tokens",
            "models": {
                key: {k: v for k, v in asdict(price).items() if k != "model" and v is not None}
                for key, price in sorted(self.models.items())
            },
        }


def usd_by_class(price: ModelPrice, tokens: tuple[int, ...]) -> tuple[float, ...]:
    """USD of each token class (`token_classes`' counts), in TOKEN_CLASSES' order."""
    # Unrolled: the collector prices every call it stores with this.
    t_in, t_cache_read, t_cache_write, t_audio_in, t_out, t_reasoning, t_audio_out = tokens
    r_in, r_cache_read, r_cache_write, r_audio_in, r_out, r_reasoning, r_audio_out = (
        price.usd_per_million.values()
    )
    return (
        t_in * r_in / 1_000_000,
        t_cache_read * r_cache_read / 1_000_000,
        t_cache_write * r_cache_write / 1_000_000,
        t_audio_in * r_audio_in / 1_000_000,
        t_out * r_out / 1_000_000,
        t_reasoning * r_reasoning / 1_000_000,
        t_audio_out * r_audio_out / 1_000_000,
    )


_FOUND_LIMIT = 4096
_builtin: PriceTable | None = None
_active: PriceTable | None = None
_table_lock = threading.RLock()  # current() loads the built-in table under it


def current() -> PriceTable:
    """The table in force in this process: the one `activate`d, else the built-in table with
    the `ASSAY_PRICES_FILE` overrides."""
    table = _active
    if table is None:
        with _table_lock:
            if _active is None:
                _set_active(_load_default())
            table = _active
    assert table is not None
    return table


def activate(table: PriceTable) -> None:
    """Put `table` in force for every later cost computed in this process."""
    with _table_lock:
        _set_active(table)


def builtin_table() -> PriceTable:
    """The table shipped in the package, without overrides."""
    global _builtin
    with _table_lock:
        if _builtin is None:
            _builtin = _load_builtin()
        return _builtin


def lookup(model: str | None, provider: str | None = None) -> ModelPrice | None:
    """The price of ``model`` in the table in force, or None when the table does not know it.

    Tried in order, case-insensitively: an exact key (``provider/model`` first when a
    provider is given, so an override can price one provider's deployment apart);
    the name without a routing prefix (``openai/``, ``models/``, ``us.anthropic.``);
    the name without snapshot suffixes (``-2024-08-06``, ``-20241022``, ``-latest``,
    ``@20240620``, ``-001``, ``-v2:0``); finally the longest key that is a prefix of
    the name at a ``-`` boundary (``gpt-4o-mini-search-preview`` → ``gpt-4o-mini``).
    A self-hosted provider's models (Ollama) match only an exact ``provider/model`` key.
    """
    return current().lookup(model, provider)


def cost_usd(
    model: str | None,
    input_tokens: int | None,
    output_tokens: int | None,
    cached_input_tokens: int | None = None,
    cache_creation_input_tokens: int | None = None,
    provider: str | None = None,
    *,
    reasoning_tokens: int | None = None,
    audio_input_tokens: int | None = None,
    audio_output_tokens: int | None = None,
) -> float | None:
    """USD cost of one call in the table in force; None for an unknown model or unknown usage,
    never 0 for those. Token counts follow the convention above (totals include their parts).

    The total of `PriceTable.cost`, without its `Usage` and `Cost` objects: the instrumentation
    prices every call with this (frozen dataclasses cost two thirds of it)."""
    if not usage_known(input_tokens, output_tokens):
        return None
    price = current().lookup(model, provider)
    if price is None:
        return None
    tokens = token_classes(
        input_tokens,
        output_tokens,
        cached_input_tokens,
        cache_creation_input_tokens,
        reasoning_tokens,
        audio_input_tokens,
        audio_output_tokens,
    )
    return sum(usd_by_class(price, tokens))


def prices_taken() -> str:
    """The date (ISO ``YYYY-MM-DD``) on which the prices in force were taken."""
    return current().taken


def reload() -> None:
    """Drop the loaded tables and every cached lookup; the next call reads them again."""
    global _builtin
    with _table_lock:
        _builtin = None
        _set_active(None)


def _set_active(table: PriceTable | None) -> None:
    global _active
    _active = table


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


def _lookup(table: PriceTable, model: str, provider: str | None) -> ModelPrice | None:
    models = table.models
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


def _longest_prefix(name: str, models: Mapping[str, ModelPrice]) -> ModelPrice | None:
    end = name.rfind("-")
    while end > 0:
        hit = models.get(name[:end])
        if hit is not None:
            following = name[end + 1 :].split("-", 1)[0]
            return None if _OTHER_MODEL_SEGMENT.fullmatch(following) else hit
        end = name.rfind("-", 0, end)
    return None


# -- loading ----------------------------------------------------------------------


def _load_builtin() -> PriceTable:
    try:
        raw = json.loads(
            (files("assay.instrumentation") / "prices.json").read_text(encoding="utf-8")
        )
        return PriceTable.of(str(raw["taken"]), _parse_models(raw["models"], {}))
    except Exception:
        # A packaging fault must not break the host application: everything is unpriced.
        _log.exception("Cannot read the built-in price table; every cost will be NULL")
        return PriceTable.of("", {})


def _load_default() -> PriceTable:
    table = builtin_table()
    path = os.environ.get(PRICES_FILE_ENV, "").strip()
    if not path:
        return table
    try:
        raw = json.loads(Path(path).expanduser().read_text(encoding="utf-8"))
        return table.overlaid(raw, f"{PRICES_FILE_ENV}={path}")
    except (OSError, ValueError) as exc:
        _log.warning(
            "Ignoring price overrides from %s=%s (%s); using the built-in prices",
            PRICES_FILE_ENV,
            path,
            exc,
        )
        return table


_ENTRY_KEYS = frozenset({"provider", "input", "output", "note", *_OPTIONAL_FIELDS})


def _parse_models(entries: Any, base: Mapping[str, ModelPrice]) -> dict[str, ModelPrice]:
    """Validated prices keyed by lower-case name; an entry for a ``base`` model
    replaces only the fields it names."""
    if not isinstance(entries, dict):
        raise TypeError('"models" must be a JSON object')
    parsed: dict[str, ModelPrice] = {}
    for raw_key, entry in entries.items():
        key = str(raw_key).strip().lower()
        if not key or not isinstance(entry, dict):
            raise ValueError(f"model {raw_key!r}: expected a non-empty name and an object")
        unknown = sorted(set(entry) - _ENTRY_KEYS)
        if unknown:
            raise ValueError(
                f"model {key!r}: unknown field(s) {', '.join(unknown)} "
                f"(known: {', '.join(sorted(_ENTRY_KEYS))})"
            )
        optional = {
            field: _optional_price(key, field, entry[field])
            for field in _OPTIONAL_FIELDS
            if field in entry
        }
        known = base.get(key)
        if known is None:
            parsed[key] = ModelPrice(
                model=key,
                provider=_provider(key, entry.get("provider", _provider_from_key(key))),
                input=_price(key, "input", entry.get("input")),
                output=_price(key, "output", entry.get("output")),
                **optional,
            )
            continue
        changes: dict[str, Any] = dict(optional)
        if "provider" in entry:
            changes["provider"] = _provider(key, entry["provider"])
        for field in ("input", "output"):
            if field in entry:
                changes[field] = _price(key, field, entry[field])
        parsed[key] = replace(known, **changes)
    return parsed


def _provider_from_key(key: str) -> str:
    # Overrides may leave the provider out; "azure/gpt-4o" still says whose it is.
    return key.split("/", 1)[0] if "/" in key else "unknown"


def _provider(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"model {key!r}: provider must be a non-empty string")
    return value.strip().lower()


# USD per 1M tokens above which a price is a mistake (a unit, a stray digit): the dearest
# model listed costs 600. A call priced with such a figure would put millions on one call.
MAX_PRICE = 100_000


def _price(key: str, field: str, value: Any) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not 0 <= value <= MAX_PRICE
    ):
        raise ValueError(
            f"model {key!r}: {field} must be a number >= 0 and at most {MAX_PRICE:,} (USD per "
            f"1M tokens), got {value!r}"
        )
    return float(value)


def _optional_price(key: str, field: str, value: Any) -> float | None:
    return None if value is None else _price(key, field, value)
