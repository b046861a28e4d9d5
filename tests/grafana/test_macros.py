"""The expansion of panel SQL matches what Grafana and the ClickHouse plugin produce."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from assay.collector.grafana.macros import (
    MacroError,
    QueryRequest,
    Selection,
    interpolate,
    interpolate_in_browser,
    round_interval_ms,
)

# The plugin documentation's own example range.
START = datetime.fromtimestamp(1415792726, tz=timezone.utc)
END = datetime.fromtimestamp(1447328726, tz=timezone.utc)


def _request(**variables: Selection) -> QueryRequest:
    return QueryRequest(START, END, dict(variables), min_interval_s=60)


def test_time_macros_expand_as_the_plugin_documents() -> None:
    request = _request()
    assert interpolate("$__timeFilter(time)", request) == (
        "time >= toDateTime(1415792726) AND time <= toDateTime(1447328726)"
    )
    assert interpolate("$__timeFilter_ms(t)", request) == (
        "t >= fromUnixTimestamp64Milli(1415792726000) "
        "AND t <= fromUnixTimestamp64Milli(1447328726000)"
    )
    assert interpolate("$__dateFilter(date)", request) == (
        "date >= toDate('2014-11-12') AND date <= toDate('2015-11-12')"
    )
    assert interpolate("$__dt(d, t)", request) == (
        "(d >= toDate('2014-11-12') AND d <= toDate('2015-11-12')) AND "
        "(t >= toDateTime(1415792726) AND t <= toDateTime(1447328726))"
    )
    assert interpolate("$__fromTime, $__toTime_ms", request) == (
        "toDateTime(1415792726), fromUnixTimestamp64Milli(1447328726000)"
    )


def test_interval_macros_follow_grafanas_interval() -> None:
    day = QueryRequest(END - timedelta(days=1), END, min_interval_s=60)
    week = QueryRequest(END - timedelta(days=7), END, min_interval_s=60)
    assert interpolate("$__interval_s", day) == "60"
    assert interpolate("$__interval_s", week) == "600"
    assert interpolate("$__timeInterval(ts)", week) == (
        "toStartOfInterval(toDateTime(ts), INTERVAL 600 second)"
    )
    assert interpolate("$__timeInterval_ms(ts)", week) == (
        "toStartOfInterval(toDateTime64(ts, 3), INTERVAL 600000 millisecond)"
    )
    assert interpolate("$__interval", week) == "10m"
    assert round_interval_ms(86_400) == 60_000 and round_interval_ms(604_800) == 600_000


def test_arguments_only_right_after_the_name_and_longest_name_first() -> None:
    request = _request()
    # A macro without brackets does not swallow a later bracket (sqlutil.parseArgs).
    assert interpolate("t >= $__fromTime AND x IN (1, 2)", request) == (
        "t >= toDateTime(1415792726) AND x IN (1, 2)"
    )
    # Nested brackets and top-level commas.
    assert interpolate("$__timeFilter(toDateTime(a, 'UTC'))", request).startswith(
        "toDateTime(a, 'UTC') >= toDateTime(1415792726)"
    )
    with pytest.raises(MacroError, match="expected 1 argument"):
        interpolate("$__timeFilter(a, b)", request)
    with pytest.raises(MacroError, match="missing close bracket"):
        interpolate("$__timeFilter(a", request)
    with pytest.raises(MacroError, match="unexpanded"):
        interpolate("$__notAMacro", request)


def test_conditional_all_and_variable_formats() -> None:
    sql = "WHERE $__conditionalAll(service IN (${service:singlequote}), $service) AND m = $model"
    everything = _request(service=Selection.all_of(["a", "b"]), model=Selection.of("x"))
    assert interpolate_in_browser(sql, everything) == "WHERE 1=1 AND m = x"
    one = _request(service=Selection.of("it's"), model=Selection.of("x"))
    assert interpolate_in_browser(sql, one) == "WHERE service IN ('it\\'s') AND m = x"
    several = _request(service=Selection.of("a", "b"), model=Selection.of("x", "y"))
    # Without a format the plugin's own formatter quotes several values.
    assert interpolate_in_browser(sql, several) == "WHERE service IN ('a','b') AND m = 'x','y'"
    # "All" in a plain ${var} means every option.
    assert interpolate_in_browser("${service:singlequote}", everything) == "'a','b'"
    # An unknown name is left to the backend (which then refuses it).
    assert interpolate_in_browser("$nothing", everything) == "$nothing"


def test_percentencode_leaves_only_url_safe_characters() -> None:
    # encodeURIComponentStrict: !'()* are encoded too; several values are {a,b}, encoded whole.
    one = _request(v=Selection.of("it's (a)\\ *ü!"))
    assert interpolate_in_browser("${v:percentencode}", one) == "it%27s%20%28a%29%5C%20%2A%C3%BC%21"
    several = _request(v=Selection.of("a,b", "c~d_e.f-g"))
    assert interpolate_in_browser("${v:percentencode}", several) == "%7Ba%2Cb%2Cc~d_e.f-g%7D"
