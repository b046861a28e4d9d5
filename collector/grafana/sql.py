"""The SQL pieces the dashboards share: variable filters, time filters, the rollup sources.

Everything here is text for Grafana: `$__...` are the ClickHouse plugin's macros, `${var:...}`
Grafana's template variables. `$__conditionalAll(cond, $var)` becomes `1=1` when "All" is
selected, so "All" costs nothing (no list of every value in the query).

A variable's value never reaches the SQL as text it could break out of. Grafana's quoting
formats escape quotes but not backslashes (a ClickHouse escape character), so a value ending in
a backslash, or two crafted ones, would end a string literal early. Instead each option's value
is the hex of the stored string (its label stays readable), Grafana percent-encodes the
selection (`${var:percentencode}`: only `A-Za-z0-9-_.~%` remain, whatever the value), and
ClickHouse decodes it back (`selected()`). A value that is not hex decodes to bytes no row has.
"""

from __future__ import annotations

from dataclasses import dataclass

from assay.collector.schema import ScoreSource

DATABASE = "assay"


@dataclass(frozen=True)
class Variable:
    """A dashboard variable and the llm_calls (or scores) column it filters. Its options query
    gives two columns: the value (hex of the stored string) and the label people see."""

    name: str
    label: str
    column: str
    options_sql: str


def options(column: str, source: str, order_by: str | None = None) -> str:
    """A variable's options: the distinct values of `column` in `source` (a table and its
    condition), valued by their hex and labelled by themselves."""
    return (
        f"SELECT hex({column}) AS value, {column} AS label FROM {source}\n"
        f"GROUP BY {column} ORDER BY {order_by or column}"
    )


def _distinct(column: str) -> str:
    return options(
        column,
        f"{DATABASE}.llm_calls_1h WHERE minute >= toStartOfHour($__fromTime) "
        f"AND minute <= $__toTime AND {column} != ''",
    )


SERVICE = Variable("service", "Service", "service_name", _distinct("service_name"))
MODEL = Variable("model", "Model", "model", _distinct("model"))
PROVIDER = Variable("provider", "Provider", "provider", _distinct("provider"))
PROMPT_NAME = Variable("prompt_name", "Prompt", "prompt_name", _distinct("prompt_name"))
PROMPT_VERSION = Variable(
    "prompt_version", "Prompt version", "prompt_version", _distinct("prompt_version")
)
EVALUATOR = Variable(
    "evaluator",
    "Evaluator",
    "name",
    options(
        "name",
        f"{DATABASE}.scores WHERE source IN ('{ScoreSource.ONLINE}', '{ScoreSource.EXPERIMENT}')"
        " AND $__timeFilter(timestamp)",
    ),
)
CALL_VARIABLES = (SERVICE, MODEL, PROVIDER, PROMPT_NAME, PROMPT_VERSION)


def selected(variable: Variable) -> str:
    """The values selected in `variable`, as an Array(String) expression. Grafana sends one
    value as itself and several as `{a,b}`, percent-encoded; hex has neither braces nor
    commas, so splitting is exact."""
    return (
        "arrayMap(v -> unhex(v), splitByChar(',', trim(BOTH '{}' FROM "
        f"decodeURLComponent('${{{variable.name}:percentencode}}'))))"
    )


def chosen(variable: Variable) -> str:
    """The one value of a single-value variable, as a String expression."""
    return f"unhex(decodeURLComponent('${{{variable.name}:percentencode}}'))"


def any_of(variable: Variable, prefix: str = "") -> str:
    """`column` is one of the selected values, or `1=1` when "All" is selected."""
    return (
        f"$__conditionalAll(has({selected(variable)}, {prefix}{variable.column}), ${variable.name})"
    )


# The "Include experiments" switch (0 or 1, default 0): experiment traffic (is_experiment, see
# migration 012) stays out of the production panels unless it is on.
INCLUDE_EXPERIMENTS = "include_experiments"


def traffic_filter(prefix: str = "") -> str:
    """Production calls, and experiment calls too when the switch is on."""
    switch = f"toUInt8OrZero(decodeURLComponent('${{{INCLUDE_EXPERIMENTS}:percentencode}}'))"
    return f"{prefix}is_experiment <= {switch}"


def call_filters(prefix: str = "", traffic: bool = True, but: tuple[Variable, ...] = ()) -> str:
    """The call variables (service, model, provider, prompt name and version) but those in
    `but` as one condition, with the experiment switch unless `traffic` is False."""
    conditions = [any_of(v, prefix) for v in CALL_VARIABLES if v not in but]
    if traffic:
        conditions.append(traffic_filter(prefix))
    return "\n  AND ".join(conditions)


def evaluator_filter(prefix: str = "") -> str:
    return any_of(EVALUATOR, prefix)


def any_in_set(variable: Variable, array_column: str) -> str:
    """Rows whose set of values (an Array column) holds any selected value; `1=1` for "All"."""
    return f"$__conditionalAll(hasAny({array_column}, {selected(variable)}), ${variable.name})"


# Measures over rows of the llm_calls rollups, shared by panels and alert rules.
LATENCY = "quantilesTDigestMerge(0.5, 0.95, 0.99)(duration_ms)"
TTFT = "quantilesTDigestIfMerge(0.5, 0.95, 0.99)(time_to_first_token_ms)"
ERROR_RATE = "sum(errors) / greatest(sum(calls), 1)"
# The cost of the priced calls over their number; NULL where none could be priced (it read $0).
AVERAGE_COST = "sum(cost_usd) / nullIf(sum(calls) - sum(unpriced_calls), 0)"
# A series' cost, NULL (no point, no bar) where none of its calls could be priced: a model missing
# from the price table is unknown, never $0 (the rollups sum an unpriced call's cost as 0).
PRICED_COST = "if(sum(calls) > sum(unpriced_calls), sum(cost_usd), NULL)"


def top_by_cost(grouped: str, limit: int = 20) -> str:
    """The rows of `grouped` (one a user or a session, with `cost_usd` as PRICED_COST and
    `unpriced`, its calls without a cost) that cost most, and those with the most unpriced
    calls: the `limit` first of each, the priced ones first. Ranked by cost alone, a user whose
    calls could not be priced (NULL) fell out of the table, though they may spend the most."""
    return (
        "SELECT * EXCEPT (by_cost, by_unpriced) FROM (\n"
        "  SELECT *, row_number() OVER (ORDER BY cost_usd DESC NULLS LAST) AS by_cost,\n"
        "    row_number() OVER (ORDER BY unpriced DESC) AS by_unpriced\n"
        f"  FROM ({grouped}))\n"
        f"WHERE by_cost <= {limit} OR (unpriced > 0 AND by_unpriced <= {limit})\n"
        "ORDER BY cost_usd DESC NULLS LAST, unpriced DESC"
    )


CACHE_HIT_RATIO = "sum(cached_input_tokens) / greatest(sum(input_tokens), 1)"
# Over call_scores: a score read so that higher is better, whichever way its evaluator scored
# (the direction column, migration 008). Averages, trends and deltas use it.
GOOD_VALUE = "if(s.direction = 'lower_is_better', 1 - s.value, s.value)"
# Over call_scores: a score that is a verdict. A failed evaluation (`error` set, migration 016)
# is a failure, never a value: averaged, its 0 (1 - 0 when lower-is-better) would be a score.
JUDGED = "s.error = ''"
# Over llm_errors: failures a provider's rate limit caused (classes: migration 012).
RATE_LIMITED = "error_class = 'rate_limit'"

# Past two days, panels read the hourly rollup (a week is 168 rows per series, not 10,080).
HOURLY = "dateDiff('hour', $__fromTime, $__toTime) > 48"


def rollup(columns: str, hourly_when: str = HOURLY) -> str:
    """A subquery over the per-minute or the per-hour rollup of llm_calls, whichever fits the
    range, filtered by the time range and the call variables. Besides `columns` it gives `time`,
    the start of the panel's bucket, and `step_s`, the bucket's width in seconds (an hour at
    least on the hourly rollup). The branch not taken has a constant false condition, so
    ClickHouse reads nothing of it."""
    filters = call_filters()
    hour_step = "greatest($__interval_s, 3600)"
    return (
        f"(\n  SELECT $__timeInterval(minute) AS time, $__interval_s AS step_s, {columns}\n"
        f"  FROM {DATABASE}.llm_calls_1m\n"
        f"  WHERE NOT ({hourly_when}) AND $__timeFilter(minute)\n  AND {filters}\n"
        f"  UNION ALL\n"
        f"  SELECT toStartOfInterval(minute, INTERVAL {hour_step} second) AS time,\n"
        f"    {hour_step} AS step_s, {columns}\n"
        f"  FROM {DATABASE}.llm_calls_1h\n"
        f"  WHERE ({hourly_when}) AND minute >= toStartOfHour($__fromTime) "
        f"AND minute <= $__toTime\n  AND {filters}\n)"
    )


def calls_in_range(prefix: str = "") -> str:
    """Rows in the time range (column `timestamp`) that match the call variables."""
    return f"$__timeFilter({prefix}timestamp)\n  AND {call_filters(prefix)}"


def days_in_range(column: str = "day") -> str:
    """Whole days touching the range: the daily rollups count the range's first day whole."""
    return f"{column} >= toDate($__fromTime) AND {column} <= toDate($__toTime)"


def prompt_versions_compared(conditions: str, min_scores: int) -> str:
    """A subquery comparing, per online evaluator and prompt, the pass rate of the prompt's
    newest version with the version before it (newest = first seen last), each over its scores
    in the range where `conditions` hold (on `call_scores`), with at least `min_scores` each.
    Columns: evaluator, prompt_name, newest_version, previous_version, newest_pass_rate,
    previous_pass_rate, newest_scored, previous_scored."""
    return (
        "(\n  SELECT evaluator, prompt_name,\n"
        "    arrayReverseSort(v -> v.1, groupArray((first_seen, pass_rate, scored, "
        "prompt_version)))\n      AS versions,\n"
        "    versions[1].4 AS newest_version, versions[2].4 AS previous_version,\n"
        "    versions[1].2 AS newest_pass_rate, versions[2].2 AS previous_pass_rate,\n"
        "    versions[1].3 AS newest_scored, versions[2].3 AS previous_scored\n"
        "  FROM (\n"
        "    SELECT name AS evaluator, prompt_name, prompt_version,\n"
        "      min(call_timestamp) AS first_seen, avg(passed) AS pass_rate, count() AS scored\n"
        f"    FROM {DATABASE}.call_scores FINAL\n"
        f"    WHERE source = '{ScoreSource.ONLINE}'"
        " AND passed IS NOT NULL AND prompt_version != ''\n"
        f"      AND $__timeFilter(timestamp) AND {conditions}\n"
        "    GROUP BY evaluator, prompt_name, prompt_version\n"
        f"    HAVING scored >= {min_scores}\n"
        "  )\n  GROUP BY evaluator, prompt_name\n  HAVING length(versions) >= 2\n)"
    )
