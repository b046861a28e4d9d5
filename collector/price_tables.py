"""The price table a collector prices calls with: which one is in force, loading a newer one,
and pricing stored calls again after prices change (rows updated in place, rollups corrected).

The table in force is the built-in one with the `ASSAY_PRICES_FILE` overrides, and on top the
file last loaded with `assay prices load` (kept in the store, so every collector on the store
and every restart uses it). Each table a collector uses is written to `price_tables` under its
version, the version stored on each priced call: any call's cost can be traced to its prices.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from assay.collector.normalize.cost import (
    CLASS_COST_COLUMNS,
    COST_FAILED_CALL,
    COST_NO_USAGE,
    COST_PRICED,
    COST_REPORTED,
    COST_UNPRICED_MODEL,
)
from assay.collector.store.base import Store
from assay.instrumentation import pricing
from assay.instrumentation.pricing import PriceTable, PriceTableError

__all__ = ["InForce", "PriceTableError", "Recomputed", "activate_from_store", "load", "recompute"]

log = logging.getLogger("assay.collector.prices")

ORIGIN_BUILTIN, ORIGIN_FILE, ORIGIN_LOADED = "built-in", "file", "loaded"

# Each token class's tokens from an llm_calls row, as `pricing.Usage.by_token_class` counts them
# (the test of recompute checks that both give the same cost for the same row).
_CLASS_TOKENS_SQL = {
    "input": "greatest(toInt64(ifNull(input_tokens, 0)) - toInt64(ifNull(cached_input_tokens, 0))"
    " - toInt64(ifNull(cache_creation_input_tokens, 0)) - toInt64(ifNull(audio_input_tokens, 0)),"
    " 0)",
    "cache_read": "ifNull(cached_input_tokens, 0)",
    "cache_write": "ifNull(cache_creation_input_tokens, 0)",
    "audio_input": "ifNull(audio_input_tokens, 0)",
    "output": "greatest(toInt64(ifNull(output_tokens, 0)) - toInt64(ifNull(reasoning_tokens, 0))"
    " - toInt64(ifNull(audio_output_tokens, 0)), 0)",
    "reasoning": "ifNull(reasoning_tokens, 0)",
    "audio_output": "ifNull(audio_output_tokens, 0)",
}
_USAGE_KNOWN_SQL = "(input_tokens IS NOT NULL OR output_tokens IS NOT NULL)"


@dataclass(frozen=True)
class InForce:
    """The table in force and where its top layer came from."""

    table: PriceTable
    origin: str

    def describe(self) -> dict[str, Any]:
        return {"origin": self.origin, **self.table.to_json()}


@dataclass(frozen=True)
class Recomputed:
    """What `recompute` changed."""

    version: str
    since: str
    until: str
    calls: int
    priced_before: int
    priced_after: int
    cost_before: float
    cost_after: float
    seconds: float


_in_force: InForce | None = None


def in_force() -> InForce:
    """The table this collector prices with (the built-in one until `activate_from_store`)."""
    return _in_force or InForce(pricing.current(), ORIGIN_BUILTIN)


def activate_from_store(store: Store) -> InForce:
    """Put in force the default table with the last loaded file on top, and record it."""
    pricing.reload()
    table = pricing.current()
    origin = ORIGIN_FILE if table is not pricing.builtin_table() else ORIGIN_BUILTIN
    _, rows = store.query(
        f"SELECT overlay FROM {store.database}.price_tables WHERE origin = '{ORIGIN_LOADED}' "
        "ORDER BY activated_at DESC LIMIT 1"
    )
    overlay = ""
    if rows:
        overlay = str(rows[0][0])
        try:
            table = table.overlaid(json.loads(overlay), "the price file loaded last")
            origin = ORIGIN_LOADED
        except (ValueError, PriceTableError) as exc:
            log.error("ignoring the price file loaded last: %s", exc)
            overlay = ""
    return _put_in_force(store, table, origin, overlay)


def load(store: Store, raw: Any) -> InForce:
    """Validate a price file (the shape of prices.json; its entries add models or replace
    fields), put the table with it in force, and keep it for every later start."""
    base = pricing.current() if _in_force is None else _base_table()
    table = base.overlaid(raw, "the price file")
    return _put_in_force(store, table, ORIGIN_LOADED, json.dumps(raw, sort_keys=True))


def _base_table() -> PriceTable:
    """The default table (built-in with ASSAY_PRICES_FILE), without any loaded file."""
    pricing.reload()
    return pricing.current()


def _put_in_force(store: Store, table: PriceTable, origin: str, overlay: str) -> InForce:
    global _in_force
    store.insert(
        "price_tables",
        [
            [table.version],
            [table.taken],
            [dt.datetime.now(dt.UTC)],
            [origin],
            [overlay],
            [json.dumps(table.to_json(), sort_keys=True)],
        ],
        ["version", "taken", "activated_at", "origin", "overlay", "prices"],
    )
    pricing.activate(table)
    _in_force = InForce(table, origin)
    log.info("prices in force: version %s (%s, taken %s)", table.version, origin, table.taken)
    return _in_force


# -- pricing stored calls again ----------------------------------------------------------


def recompute(store: Store, since: dt.datetime, until: dt.datetime) -> Recomputed:
    """Price the calls stored in [since, until) again with the table in force.

    The rows are updated in place (an ALTER ... UPDATE, so no second row per call), then the
    rollups the materialized views filled at insert are corrected by what changed, day by day:
    each rollup's cost and unpriced counts are compared with the calls of the same days and the
    difference is inserted as a correcting row. Running it twice changes nothing the second time.
    """
    if until <= since:
        raise ValueError("the end of the time range must come after its start")
    started = time.monotonic()
    table = in_force().table
    db = store.database
    where = f"timestamp >= {_literal(since)} AND timestamp < {_literal(until)}"
    before = _totals(store, where)
    _, pairs = store.query(
        f"SELECT DISTINCT toString(model), toString(provider) FROM {db}.llm_calls WHERE {where}"
    )
    prices = {
        (model, provider): price.per_token_class()
        for model, provider in pairs
        if (price := table.lookup(model, provider)) is not None
    }
    if before[0]:
        _update_calls(store, where, prices, table.version)
        _correct_rollups(store, since, until)
    after = _totals(store, where)
    return Recomputed(
        version=table.version,
        since=since.isoformat(),
        until=until.isoformat(),
        calls=before[0],
        priced_before=before[1],
        priced_after=after[1],
        cost_before=before[2],
        cost_after=after[2],
        seconds=round(time.monotonic() - started, 3),
    )


def _totals(store: Store, where: str) -> tuple[int, int, float]:
    _, rows = store.query(
        f"SELECT count(), countIf(cost_source = '{COST_PRICED}'), sum(ifNull(cost_usd, 0)) "
        f"FROM {store.database}.llm_calls WHERE {where}"
    )
    calls, priced, cost = rows[0]
    return int(calls), int(priced), float(cost or 0.0)


def _sql_str(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _update_calls(
    store: Store,
    where: str,
    prices: dict[tuple[str, str], dict[str, float]],
    version: str,
) -> None:
    """One mutation: each priced (model, provider) gets its prices by position in a literal
    array; position 0 is a model the table does not know."""
    keys = list(prices)
    if keys:
        tuples = ", ".join(f"({_sql_str(m)}, {_sql_str(p)})" for m, p in keys)
        position = f"indexOf([{tuples}], (toString(model), toString(provider)))"
    else:
        position = "0"
    # normalize/cost.py's call_cost in SQL: a call that failed before its answer finished is
    # unpriced before all else.
    unfinished = "(status = 'error' AND empty(finish_reasons))"
    priced = f"(NOT {unfinished} AND {position} > 0 AND {_USAGE_KNOWN_SQL})"

    def class_cost(name: str) -> str:
        values = ", ".join(repr(prices[key][name]) for key in keys) or "0.0"
        return f"{_CLASS_TOKENS_SQL[name]} * [{values}][{position}] / 1000000"

    class_costs = {name: class_cost(name) for name in _CLASS_TOKENS_SQL}
    total = " + ".join(f"({expr})" for expr in class_costs.values())
    # A reported 0 for a call with tokens is an instrumentation that could not price it.
    reported = (
        f"(NOT {unfinished} AND reported_cost_usd IS NOT NULL AND NOT (reported_cost_usd = 0 "
        "AND (ifNull(input_tokens, 0) > 0 OR ifNull(output_tokens, 0) > 0)))"
    )
    assignments = [
        *(
            f"{CLASS_COST_COLUMNS[name]} = if({priced}, {expr}, NULL)"
            for name, expr in class_costs.items()
        ),
        f"cost_usd = multiIf({priced}, {total}, {reported}, reported_cost_usd, NULL)",
        f"cost_source = multiIf({unfinished}, '{COST_FAILED_CALL}', {priced}, '{COST_PRICED}', "
        f"{reported}, '{COST_REPORTED}', status = 'error', '{COST_FAILED_CALL}', "
        f"{_USAGE_KNOWN_SQL}, '{COST_UNPRICED_MODEL}', "
        f"'{COST_NO_USAGE}')",
        f"price_version = if({priced}, {_sql_str(version)}, '')",
    ]
    table, on_cluster = _local_table(store, "llm_calls")
    # Synchronous, so the rollups are corrected from the updated rows.
    store.command(
        f"ALTER TABLE {store.database}.{table}{on_cluster} UPDATE {', '.join(assignments)} "
        f"WHERE {where} SETTINGS mutations_sync = 2"
    )


def _local_table(store: Store, name: str) -> tuple[str, str]:
    """Where a mutation must run: on a cluster, the shards' local tables."""
    cluster = getattr(store, "cluster", None)
    if cluster:
        return f"{name}_local", f" ON CLUSTER {cluster}"
    return name, ""


# Each rollup: its time column, how a call's timestamp maps to it, its other key columns, the
# columns a price change can change (with their value computed from llm_calls), the constant
# columns of a correcting row, and which calls it counts.
# `is_experiment` (migration 012) keeps a correction of experiment calls on experiment rows.
_DIMS = "service_name, provider, model, prompt_name, prompt_version, is_experiment"
# The users' and sessions' rollups count unpriced calls (migration 019), not why.
_COST = {
    "cost_usd": "sum(ifNull(cost_usd, 0))",
    "unpriced_calls": "toInt64(countIf(cost_usd IS NULL))",
}
_UNPRICED = {
    **_COST,
    "unpriced_model_calls": f"toInt64(countIf(cost_source = '{COST_UNPRICED_MODEL}'))",
    "no_usage_calls": f"toInt64(countIf(cost_source = '{COST_NO_USAGE}'))",
    "failed_unpriced_calls": f"toInt64(countIf(cost_source = '{COST_FAILED_CALL}'))",
}


@dataclass(frozen=True)
class _Rollup:
    table: str
    time_column: str
    time_of_call: str
    keys: str
    changing: dict[str, str]
    filler: dict[str, str]  # constant (or key-derived) columns of a correcting row
    where: str = "1"


_ROLLUPS = (
    _Rollup("llm_calls_1m", "minute", "toStartOfMinute(timestamp)", _DIMS, _UNPRICED, {}),
    _Rollup("llm_calls_1h", "minute", "toStartOfHour(timestamp)", _DIMS, _UNPRICED, {}),
    _Rollup(
        "llm_users_1d",
        "day",
        "toDate(timestamp)",
        f"{_DIMS}, user_id",
        _COST,
        {},
        "user_id != ''",
    ),
    _Rollup(
        "llm_sessions_1d",
        "day",
        "toDate(timestamp)",
        "session_id, is_experiment",
        _COST,
        {
            # `any` keeps one of the values merged: a correcting row carries the same user.
            "user_id": "any(user_id)",
            "first_seen": "min(toDateTime64(timestamp, 3))",
            "last_seen": "max(toDateTime64(timestamp, 3))",
            # The same sets, so a filter on them (has(models, ...)) sees the correction too.
            "services": "groupUniqArray(toString(service_name))",
            "providers": "groupUniqArray(toString(provider))",
            "models": "groupUniqArray(toString(model))",
            "prompt_names": "groupUniqArray(toString(prompt_name))",
            "prompt_versions": "groupUniqArray(toString(prompt_version))",
        },
        "session_id != ''",
    ),
)


def _correct_rollups(store: Store, since: dt.datetime, until: dt.datetime) -> None:
    """Correct each rollup over the whole days of [since, until): what the calls of those days
    now add up to, minus what the rollup holds, inserted as one row per key that differs.
    Keys without stored calls (their calls expired, or were deleted) are left alone."""
    db = store.database
    day_from = _literal(dt.datetime.combine(since.date(), dt.time(), since.tzinfo))
    day_to = _literal(
        dt.datetime.combine(until.date() + dt.timedelta(days=1), dt.time(), until.tzinfo)
    )
    for rollup in _ROLLUPS:  # the per-minute rollup first: its corrections feed the hourly one
        key_columns = [rollup.time_column, *(k.strip() for k in rollup.keys.split(","))]
        keys = ", ".join(key_columns)
        computed = {**rollup.changing, **rollup.filler}
        truth = ", ".join(
            [f"{rollup.time_of_call} AS {rollup.time_column}", rollup.keys]
            + [f"{expr} AS new_{name}" for name, expr in computed.items()]
        )
        # Aliases apart from the column names: an alias named like a column would be read
        # inside the other aggregates.
        held = ", ".join(f"sum({name}) AS old_{name}" for name in rollup.changing)
        differs = " OR ".join(
            f"abs(new_{name} - old_{name}) > 1e-12"
            if name == "cost_usd"
            else f"new_{name} != old_{name}"
            for name in rollup.changing
        )
        columns = [*key_columns, *rollup.changing, *rollup.filler]
        values = [
            *(f"t.{k}" for k in key_columns),
            *(f"new_{name} - old_{name}" for name in rollup.changing),
            *(f"new_{name}" for name in rollup.filler),
        ]
        store.command(
            f"INSERT INTO {db}.{rollup.table} ({', '.join(columns)}) "
            f"SELECT {', '.join(values)} FROM "
            f"(SELECT {truth} FROM {db}.llm_calls "
            f"WHERE timestamp >= {day_from} AND timestamp < {day_to} AND {rollup.where} "
            f"GROUP BY {keys}) AS t "
            f"LEFT JOIN (SELECT {keys}, {held} FROM {db}.{rollup.table} "
            f"WHERE {rollup.time_column} >= toDate({day_from}) "
            f"AND {rollup.time_column} < toDate({day_to}) GROUP BY {keys}) AS r USING ({keys}) "
            f"WHERE {differs}"
        )


def _literal(moment: dt.datetime) -> str:
    """A DateTime64(9) literal of an aware datetime, in UTC."""
    utc = moment.astimezone(dt.UTC).replace(tzinfo=None)
    return f"toDateTime64('{utc.isoformat(sep=' ', timespec='microseconds')}', 9, 'UTC')"
