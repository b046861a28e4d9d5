"""Reads of LLM calls for the UI and the API: filtered, keyset-paged lists, one call whole, its
trace and its scores."""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from assay.collector.schema import CALL_LIST_COLUMNS, FEEDBACK_NAME, ORIENTED_VALUE_SQL, ScoreSource
from assay.collector.store.base import Store

# A page looks back through growing windows of time before the cursor: the table is partitioned
# by day, so a narrow window reads a few parts however large the table is; the last is unbounded.
WINDOWS = (dt.timedelta(hours=1), dt.timedelta(days=1), dt.timedelta(days=7), None)
# The calls list's equality filters, the API's query parameters and the UI's alike: name →
# column (named for their column, but for service_name).
EQUALITY_FILTERS = {
    "service": "service_name",
    "model": "model",
    "provider": "provider",
    "status": "status",
    "user_id": "user_id",
    "session_id": "session_id",
    "prompt_name": "prompt_name",
    "prompt_version": "prompt_version",
    "trace_id": "trace_id",
}
_RELATIVE = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
# What a DateTime64(9) column holds (nanoseconds in an Int64): a time outside cannot be compared.
EARLIEST = dt.datetime(1900, 1, 1, tzinfo=dt.timezone.utc)
LATEST = dt.datetime(2262, 4, 11, 23, 47, 16, tzinfo=dt.timezone.utc)


def parse_time(value: str, now: dt.datetime) -> dt.datetime:
    """`15m`, `2h`, `7d` (ago) or an ISO 8601 time (UTC when it has no offset), between 1900
    and 2262 (what the timestamps hold); ValueError otherwise."""
    match = _RELATIVE.match(value.strip())
    try:
        if match:
            moment = now - dt.timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
        else:
            moment = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except OverflowError:
        moment = EARLIEST - dt.timedelta(days=1)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    if not EARLIEST <= moment <= LATEST:
        raise ValueError(f"{value!r} is out of range (1900-01-01 to 2262-04-11)")
    return moment


# Calls made by experiment runs (`assay.evaluators.evaluate`) are not production traffic: the
# list hides them unless asked ("show": all calls, "only": experiment calls alone), or unless
# it is narrowed to one trace, which is a choice of its own.
EXPERIMENT_TRAFFIC = ("", "show", "only")


@dataclass
class CallFilters:
    """What a person narrowed the list to; every field optional, all combined with AND."""

    service: str = ""
    model: str = ""
    provider: str = ""
    prompt_name: str = ""
    prompt_version: str = ""
    user_id: str = ""
    session_id: str = ""
    status: str = ""
    score_below: str = ""  # a number in [0, 1]: calls with some score worse than it
    score_name: str = ""  # narrows score_below to one evaluator
    feedback: str = ""  # "yes" | "no" | "" (calls with or without a person's grade)
    text: str = ""  # found in the prompt or the response, case-insensitive
    trace_id: str = ""  # one trace's calls
    experiments: str = ""  # "" hides experiment calls, "show" includes them, "only" keeps them
    ungraded_by: str = field(default="", repr=False)  # the review queue: not graded by this person

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> CallFilters:
        names = {f.name for f in fields(cls)} - {"ungraded_by"}
        found = cls(**{k: str(params.get(k, "")).strip() for k in names})
        if found.score_below:
            try:
                float(found.score_below)
            except ValueError as exc:
                raise ValueError(f"score below: {found.score_below!r} is not a number") from exc
        if found.feedback not in ("", "yes", "no"):
            raise ValueError("has feedback: choose yes or no")
        if found.experiments not in EXPERIMENT_TRAFFIC:
            raise ValueError("experiment calls: choose show or only")
        return found

    def query_items(self) -> list[tuple[str, str]]:
        """The filters as URL query items (for links that keep them)."""
        return [
            (f.name, getattr(self, f.name))
            for f in fields(self)
            if f.name != "ungraded_by" and getattr(self, f.name)
        ]

    def where(self, database: str) -> tuple[list[str], dict[str, Any]]:
        clauses: list[str] = []
        values: dict[str, Any] = {}
        for name, column in EQUALITY_FILTERS.items():
            if getattr(self, name):
                clauses.append(f"{column} = {{f_{name}:String}}")
                values[f"f_{name}"] = getattr(self, name)
        if self.experiments == "only":
            clauses.append("experiment_id != ''")
        elif not self.experiments and not self.trace_id:
            clauses.append("experiment_id = ''")
        if self.text:
            clauses.append(
                "(positionCaseInsensitiveUTF8(input_messages, {f_text:String}) > 0"
                " OR positionCaseInsensitiveUTF8(output_messages, {f_text:String}) > 0"
                " OR positionCaseInsensitiveUTF8(system_instructions, {f_text:String}) > 0)"
            )
            values["f_text"] = self.text
        if self.score_below:
            named = " AND name = {f_score_name:String}" if self.score_name else ""
            clauses.append(
                f"span_id IN (SELECT span_id FROM {database}.scores FINAL WHERE error = ''"
                f" AND {ORIENTED_VALUE_SQL} < {{f_score_below:Float64}}{named})"
            )
            values["f_score_below"] = float(self.score_below)
            if self.score_name:
                values["f_score_name"] = self.score_name
        if self.feedback:
            graded = _graded_condition(database, "")
            clauses.append(graded if self.feedback == "yes" else f"NOT ({graded})")
        if self.ungraded_by:
            clauses.append(f"NOT ({_graded_condition(database, '{f_reviewer:String}')})")
            values["f_reviewer"] = self.ungraded_by
        return clauses, values


def _graded_condition(database: str, author_param: str) -> str:
    """SQL true for a call a person graded (by span, or by its whole trace)."""
    by = f" AND author = {author_param}" if author_param else ""
    human = f"source = '{ScoreSource.HUMAN}' AND name = '{FEEDBACK_NAME}'{by}"
    return (
        f"(span_id IN (SELECT span_id FROM {database}.scores WHERE {human} AND span_id != '')"
        f" OR trace_id IN (SELECT trace_id FROM {database}.scores WHERE {human}"
        " AND span_id = ''))"
    )


@dataclass(frozen=True)
class Cursor:
    """A position in the list: the (start time in ns, span id) of a call. Nanoseconds, because
    calls in the same microsecond must still sort apart."""

    timestamp_ns: int
    span_id: str

    def encode(self) -> str:
        return f"{self.timestamp_ns}_{self.span_id}"

    @classmethod
    def decode(cls, text: str) -> Cursor:
        moment, _, span_id = text.partition("_")
        if not moment.isdigit() or not span_id.isalnum():
            raise ValueError(f"bad page cursor {text!r}")
        return cls(int(moment), span_id)


@dataclass
class Page:
    calls: list[dict[str, Any]]
    next_cursor: Cursor | None  # older calls follow
    prev_cursor: Cursor | None  # newer calls precede (None on the first page)


def records(store: Store, sql: str, values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The query's rows, each a dict by column name."""
    columns, rows = store.query(sql, values)
    return [dict(zip(columns, row, strict=True)) for row in rows]


def _keys(
    store: Store,
    filters: CallFilters,
    cursor: Cursor | None,
    older: bool,
    limit: int,
    now_ns: int,
) -> list[tuple[int, str]]:
    """The (timestamp, span id) of up to `limit` calls next to `cursor`, newest first when
    `older`, oldest first otherwise. Only the two key columns are read: cheap on any size."""
    database = store.database
    clauses, values = filters.where(database)
    if cursor is not None:
        op = "<" if older else ">"
        at = "fromUnixTimestamp64Nano({c_ns:Int64})"
        # The plain bound lets ClickHouse skip partitions; the tuple orders within a moment.
        clauses.append(
            f"timestamp {op}= {at} AND (timestamp, span_id) {op} ({at}, {{c_span:String}})"
        )
        values["c_ns"] = cursor.timestamp_ns
        values["c_span"] = cursor.span_id
    order = "DESC" if older else "ASC"
    anchor_ns = cursor.timestamp_ns if cursor is not None else now_ns
    found: list[tuple[int, str]] = []
    for window in WINDOWS if older else (None,):
        bounded = list(clauses)
        if window is not None:
            bounded.append("timestamp >= fromUnixTimestamp64Nano({w_from:Int64})")
            values["w_from"] = anchor_ns - int(window.total_seconds() * 1e9)
        sql = (
            f"SELECT toUnixTimestamp64Nano(timestamp), span_id FROM {database}.llm_calls"
            f"{' WHERE ' + ' AND '.join(bounded) if bounded else ''}"
            f" ORDER BY timestamp {order}, span_id {order} LIMIT {limit}"
        )
        _, rows = store.query(sql, values)
        found = [(row[0], row[1]) for row in rows]
        if len(found) >= limit:
            break
    return found


def list_calls(
    store: Store,
    filters: CallFilters,
    cursor: Cursor | None = None,
    older: bool = True,
    limit: int = 50,
    now_ns: int | None = None,
) -> Page:
    """One page of calls, newest first: after `cursor` going older, or before it going newer."""
    keys = _keys(store, filters, cursor, older, limit + 1, now_ns or time.time_ns())
    more = len(keys) > limit
    keys = keys[:limit]
    if not older:
        keys.reverse()
    calls = calls_by_keys(store, keys)
    first, last = (Cursor(*keys[0]), Cursor(*keys[-1])) if keys else (None, None)
    if older:
        next_cursor = last if more else None
        prev_cursor = first if cursor is not None else None
    else:
        next_cursor = last
        prev_cursor = first if more else None
    return Page(calls, next_cursor, prev_cursor)


# The list's previews: the text of the last prompt message and of the answer, cut short in the
# store (a page never reads whole prompts, which can be long). One more character than shown
# tells the page a text was cut.
PREVIEW_CHARS = 140


def _preview_sql(column: str, tool_calls: bool) -> str:
    """The text of the column's last message that has one (its first text part; with
    `tool_calls`, a tool call's name counts as text), or the column itself when it is not
    JSON: the prompt's last question, the answer's text or the tool it calls."""
    text = "JSONExtractString(m, 'parts', 1, 'content')"
    older = "JSONExtractString(m, 'content')"  # {"role", "content"} messages
    named = "JSONExtractString(m, 'parts', 1, 'name')"
    tool = f"if({named} != '', concat('calls ', {named}, '()'), '')" if tool_calls else "''"
    one = f"multiIf({text} != '', {text}, {older} != '', {older}, {tool})"
    found = f"arrayLast(t -> t != '', arrayMap(m -> {one}, JSONExtractArrayRaw({column})))"
    return f"leftUTF8(if(isValidJSON({column}), {found}, {column}), {PREVIEW_CHARS + 1})"


CALL_PREVIEWS = (
    f"{_preview_sql('input_messages', tool_calls=False)} AS prompt_preview",
    f"{_preview_sql('output_messages', tool_calls=True)} AS response_preview",
)


@dataclass
class CallTotals:
    """What every call matching the filters adds up to."""

    calls: int
    errors: int
    cost: float | None  # USD; None when no call has a price
    unpriced: int  # calls without a cost (normalize/cost.py: UNPRICED_CALLS)
    unpriced_failed: int  # those of them that failed
    p95_ms: float | None

    @property
    def error_rate(self) -> float:
        return self.errors / self.calls if self.calls else 0.0


def call_totals(store: Store, filters: CallFilters) -> CallTotals:
    """Count, errors, cost and p95 latency of the calls matching `filters` (all of them, not a
    page: one aggregation over the columns it names)."""
    clauses, values = filters.where(store.database)
    sql = (
        "SELECT count() AS calls, countIf(status = 'error') AS errors,"
        " sumOrNull(cost_usd) AS cost, countIf(cost_usd IS NULL) AS unpriced,"
        " countIf(cost_usd IS NULL AND status = 'error') AS unpriced_failed,"
        " quantileOrNull(0.95)(duration_ms) AS p95_ms"
        f" FROM {store.database}.llm_calls"
        f"{' WHERE ' + ' AND '.join(clauses) if clauses else ''}"
    )
    (row,) = records(store, sql, values)
    return CallTotals(**row)


def calls_by_keys(store: Store, keys: list[tuple[int, str]]) -> list[dict[str, Any]]:
    """The list columns of the calls with these keys, in the keys' order, with their scores."""
    if not keys:
        return []
    database = store.database
    sql = (
        f"SELECT {', '.join((*CALL_LIST_COLUMNS, *CALL_PREVIEWS))} FROM {database}.llm_calls"
        " WHERE timestamp BETWEEN fromUnixTimestamp64Nano({lo:Int64})"
        " AND fromUnixTimestamp64Nano({hi:Int64})"
        " AND span_id IN {spans:Array(String)} LIMIT 1 BY span_id"
    )
    times = [k[0] for k in keys]
    rows = records(store, sql, {"lo": min(times), "hi": max(times), "spans": [k[1] for k in keys]})
    by_span = {row["span_id"]: row for row in rows}
    calls = [by_span[span] for _, span in keys if span in by_span]
    scores = scores_for(store, calls)
    for call in calls:
        call["scores"] = scores.get(call["span_id"], [])
    return calls


# The current scores of a selection of `scores` rows (GROUP BY CURRENT_SCORE_KEY): a person's
# later grade, or a run judged again, replaces the earlier row (the latest row per key wins,
# whether or not ClickHouse has merged the replaced rows yet).
CURRENT_SCORE_KEY = (
    "trace_id, span_id, name, source, author, experiment_id, dataset_item_id, session_id"
)
CURRENT_SCORE_COLUMNS = (
    f"{CURRENT_SCORE_KEY},"
    " argMax(value, timestamp) AS value, argMax(label, timestamp) AS label,"
    " argMax(passed, timestamp) AS passed, argMax(explanation, timestamp) AS explanation,"
    " max(timestamp) AS at, argMax(evaluator_version, timestamp) AS evaluator_version,"
    " argMax(cost_usd, timestamp) AS cost_usd, argMax(duration_ms, timestamp) AS duration_ms,"
    " argMax(error, timestamp) AS error, argMax(direction, timestamp) AS direction"
)


def scores_for(store: Store, calls: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The current scores of each call (span id → scores), trace-wide feedback included, and
    for a call an experiment made, the scores its item got in that run (they name the item's
    trace, whose root span is the item's, not the call's).

    A person's later grade replaces their earlier one: the latest row per key wins here
    (argMax), whether or not ClickHouse has merged the replaced rows yet."""
    if not calls:
        return {}
    experiment_traces = [c["trace_id"] for c in calls if c.get("experiment_id")]
    database = store.database
    sql = (
        f"SELECT {CURRENT_SCORE_COLUMNS} FROM {database}.scores"
        " WHERE span_id IN {spans:Array(String)}"
        " OR (span_id = '' AND trace_id IN {traces:Array(String)})"
        f" OR (source = '{ScoreSource.EXPERIMENT}' AND trace_id IN {{runs:Array(String)}})"
        f" GROUP BY {CURRENT_SCORE_KEY} ORDER BY source, name, at"
    )
    rows = records(
        store,
        sql,
        {
            "spans": [c["span_id"] for c in calls],
            "traces": list({c["trace_id"] for c in calls}),
            "runs": experiment_traces,
        },
    )
    out: dict[str, list[dict[str, Any]]] = {}
    for call in calls:
        out[call["span_id"]] = [
            r
            for r in rows
            if r["span_id"] == call["span_id"]
            or (r["span_id"] == "" and r["trace_id"] == call["trace_id"])
            or (
                r["source"] == ScoreSource.EXPERIMENT
                and call.get("experiment_id")
                and r["trace_id"] == call["trace_id"]
            )
        ]
    return out


def get_call(store: Store, span_id: str) -> dict[str, Any] | None:
    """Every column of one call (found by the span id's bloom filter), or None."""
    rows = records(
        store,
        "SELECT *, toUnixTimestamp64Nano(timestamp) AS timestamp_ns"
        f" FROM {store.database}.llm_calls WHERE span_id = {{span:String}} LIMIT 1",
        {"span": span_id},
    )
    if not rows:
        return None
    call = rows[0]
    call["scores"] = scores_for(store, [call]).get(span_id, [])
    return call


def experiment_of(store: Store, experiment_id: str) -> dict[str, Any] | None:
    """The run an experiment call belongs to: its name and status (None when not stored)."""
    rows = records(
        store,
        "SELECT experiment_id, name, status, verdict, repetitions"
        f" FROM {store.database}.experiments FINAL WHERE experiment_id = {{id:String}} LIMIT 1",
        {"id": experiment_id},
    )
    return rows[0] if rows else None


def neighbour(
    store: Store, filters: CallFilters, cursor: Cursor | None, older: bool = True
) -> str | None:
    """The span id of the call right after (older) or before (newer) `cursor` in the filtered
    list; the newest call when there is no cursor."""
    keys = _keys(store, filters, cursor, older, 1, time.time_ns())
    return keys[0][1] if keys else None


def filter_choices(store: Store) -> dict[str, list[str]]:
    """Values offered in the filter drop-downs (from the last 30 days, small columns only)."""
    database = store.database
    sql = (
        "SELECT groupUniqArray(100)(service_name), groupUniqArray(100)(model),"
        " groupUniqArray(100)(prompt_name), groupUniqArray(100)(prompt_version)"
        f" FROM {database}.llm_calls WHERE timestamp > now() - INTERVAL 30 DAY"
    )
    _, rows = store.query(sql)
    names = ("service", "model", "prompt_name", "prompt_version")
    values = rows[0] if rows else ([],) * 4
    score_names = store.query(
        f"SELECT DISTINCT name FROM {database}.scores ORDER BY name LIMIT 100"
    )[1]
    choices = {n: sorted(v for v in vals if v) for n, vals in zip(names, values, strict=True)}
    choices["score_name"] = [r[0] for r in score_names]
    return choices


def dataset_names(store: Store) -> list[str]:
    """Names of the datasets there are, for the "add to dataset" form."""
    _, rows = store.query(
        f"SELECT DISTINCT name FROM {store.database}.datasets ORDER BY name LIMIT 1000"
    )
    return [row[0] for row in rows]
