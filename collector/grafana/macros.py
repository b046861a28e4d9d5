"""A panel's SQL as ClickHouse receives it from Grafana: template variables and the ClickHouse
plugin's macros expanded the way Grafana and the plugin expand them.

Three steps, in Grafana's order:
1. the plugin's browser side turns `$__conditionalAll(cond, $var)` into `1=1` when the
   variable is "All" (`CHDatasource.applyConditionalAll`);
2. Grafana's template service replaces `$var`, `${var}`, `${var:format}` and `[[var]]`, with the
   plugin's own formatter for multi-value variables (`'a','b'`);
3. the plugin's backend expands `$__timeFilter(...)` and the other macros
   (`pkg/macros/macros.go` through grafana-plugin-sdk-go `sqlutil.Interpolate`: longest macro
   name first, a bracketed argument list only right after the name, arguments split on
   top-level commas).
It lets tests and the benchmark run every panel's query on the real engine.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from urllib.parse import quote

ALL = "$__all"


@dataclass(frozen=True)
class Selection:
    """What a variable has selected: some values, or "All" (then every option is meant)."""

    values: tuple[str, ...]
    options: tuple[str, ...] = ()
    is_all: bool = False

    @classmethod
    def all_of(cls, options: Sequence[str]) -> Selection:
        return cls((ALL,), tuple(options), is_all=True)

    @classmethod
    def of(cls, *values: str) -> Selection:
        return cls(tuple(values))

    @property
    def current(self) -> str:
        """The variable's `current.value.toString()` in the browser (an array joins with ',')."""
        return ",".join(self.values)

    @property
    def effective(self) -> list[str] | str:
        values = list(self.options) if self.is_all else list(self.values)
        return values if self.is_all or len(values) != 1 else values[0]


@dataclass
class QueryRequest:
    start: datetime
    end: datetime
    variables: dict[str, Selection] = field(default_factory=dict)
    min_interval_s: float = 0.0
    max_data_points: int = 1000

    @property
    def interval_s(self) -> float:
        """Grafana's `$__interval` for this panel: range / max data points, rounded like
        Grafana's `rangeutil.roundInterval`, never below the panel's minimum interval."""
        range_ms = (self.end - self.start).total_seconds() * 1000
        rounded = round_interval_ms(range_ms / self.max_data_points)
        return max(rounded, self.min_interval_s * 1000) / 1000


# Grafana's rangeutil.roundInterval: (upper bound in ms, interval in ms).
_ROUNDING = (
    (15, 10),
    (35, 20),
    (75, 50),
    (150, 100),
    (350, 200),
    (750, 500),
    (1_500, 1_000),
    (3_500, 2_000),
    (7_500, 5_000),
    (12_500, 10_000),
    (17_500, 15_000),
    (25_000, 20_000),
    (45_000, 30_000),
    (90_000, 60_000),
    (210_000, 120_000),
    (450_000, 300_000),
    (750_000, 600_000),
    (1_050_000, 900_000),
    (1_500_000, 1_200_000),
    (2_700_000, 1_800_000),
    (5_400_000, 3_600_000),
    (9_000_000, 7_200_000),
    (16_200_000, 10_800_000),
    (24_300_000, 21_600_000),
    (64_800_000, 43_200_000),
    (604_800_000, 86_400_000),
    (1_814_400_000, 604_800_000),
    (3_628_800_000, 2_592_000_000),
)


def round_interval_ms(interval_ms: float) -> float:
    for bound, rounded in _ROUNDING:
        if interval_ms < bound:
            return rounded
    return 31_536_000_000


class MacroError(ValueError):
    """A macro the plugin would refuse (wrong arguments, unclosed bracket)."""


# --- step 1: $__conditionalAll (the plugin's browser code) ---------------------------------

_CONDITIONAL_ALL = "$__conditionalAll("


def _bracket_args(text: str, open_index: int) -> list[str]:
    """Arguments of the bracket opening at `open_index`, split on commas at its level
    (the plugin's `getMacroArgs`); [] when it never closes."""
    args: list[str] = []
    depth = 0
    last = open_index + 1
    for match in re.finditer(r"[(),]", text[open_index:]):
        token, end = match.group(), open_index + match.end()
        depth += {"(": 1, ")": -1}.get(token, 0)
        if token == "," and depth == 1:
            args.append(text[last : end - 1])
            last = end
        if depth == 0:
            args.append(text[last : end - 1])
            return args
    return []


def apply_conditional_all(sql: str, variables: dict[str, Selection]) -> str:
    index = sql.rfind(_CONDITIONAL_ALL)
    while index != -1:
        params = _bracket_args(sql, index + len(_CONDITIONAL_ALL) - 1)
        if len(params) != 2:
            return sql  # the plugin gives up on the whole query, leaving the macro in
        phrase = params[0]
        selection = variables.get(params[1].strip()[1:])
        if selection is not None and selection.current in ("", ALL):
            phrase = "1=1"
        sql = sql.replace(f"{_CONDITIONAL_ALL}{params[0]},{params[1]})", phrase, 1)
        index = sql.rfind(_CONDITIONAL_ALL)
    return sql


# --- step 2: Grafana's template variables --------------------------------------------------

_VARIABLE = re.compile(
    r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:^\}]+))?(?::([^\}]+))?\}"
)


def _plugin_format(value: list[str] | str) -> str:
    # CHDatasource.format: arrays become 'a','b' (no escaping); a single value stays raw.
    return "'" + "','".join(value) + "'" if isinstance(value, list) else value


def _format(value: list[str] | str, fmt: str | None) -> str:
    if fmt is None:
        return _plugin_format(value)
    if fmt == "singlequote":
        values = value if isinstance(value, list) else [value]
        return ",".join("'" + v.replace("'", "\\'") + "'" for v in values)
    if fmt == "doublequote":
        values = value if isinstance(value, list) else [value]
        return ",".join('"' + v.replace('"', '\\"') + '"' for v in values)
    if fmt == "percentencode":
        # encodeURIComponentStrict: everything but A-Za-z0-9-_.~ as UTF-8 %XX; several values
        # as one {a,b} string (like the glob format), encoded whole.
        text = "{" + ",".join(value) + "}" if isinstance(value, list) else value
        return quote(text, safe="")
    if fmt == "csv":
        return ",".join(value) if isinstance(value, list) else value
    if fmt == "raw":
        return ",".join(value) if isinstance(value, list) else value
    raise MacroError(f"variable format {fmt!r} is not emulated")


def replace_variables(sql: str, request: QueryRequest) -> str:
    interval_ms = request.interval_s * 1000
    builtins = {"__interval_ms": str(int(interval_ms)), "__interval": _format_interval(interval_ms)}

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2) or match.group(4)
        fmt = match.group(3) or match.group(6)
        if name in builtins:
            return builtins[name]
        selection = request.variables.get(name)
        if selection is None:
            return match.group(0)  # not a variable: Grafana leaves it alone
        return _format(selection.effective, fmt)

    return _VARIABLE.sub(substitute, sql)


def _format_interval(interval_ms: float) -> str:
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if interval_ms >= size and interval_ms % size == 0:
            return f"{int(interval_ms // size)}{unit}"
    return f"{int(interval_ms)}ms"


# --- step 3: the plugin's backend macros ---------------------------------------------------


def _seconds(moment: datetime) -> int:
    return int(moment.timestamp())


def _millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _date(moment: datetime) -> str:
    return f"toDate('{moment.astimezone(timezone.utc):%Y-%m-%d}')"


def _one(args: list[str]) -> str:
    if len(args) != 1:
        raise MacroError(f"unexpected number of arguments: expected 1 argument, got {len(args)}")
    return args[0]


def _macros(request: QueryRequest) -> dict[str, Callable[[list[str]], str]]:
    start, end = request.start, request.end
    from_s, to_s = f"toDateTime({_seconds(start)})", f"toDateTime({_seconds(end)})"
    from_ms = f"fromUnixTimestamp64Milli({_millis(start)})"
    to_ms = f"fromUnixTimestamp64Milli({_millis(end)})"
    interval_s = int(max(request.interval_s, 1))
    interval_ms = int(max(request.interval_s * 1000, 1))

    def date_time_filter(args: list[str]) -> str:
        if len(args) != 2:
            raise MacroError(f"unexpected number of arguments: expected 2, got {len(args)}")
        date, time = args
        return (
            f"({date} >= {_date(start)} AND {date} <= {_date(end)}) AND "
            f"({time} >= {from_s} AND {time} <= {to_s})"
        )

    def rfc3339(moment: datetime) -> str:
        return f"{moment.astimezone(timezone.utc):%Y-%m-%dT%H:%M:%SZ}"

    return {
        "fromTime": lambda _: from_s,
        "toTime": lambda _: to_s,
        "fromTime_ms": lambda _: from_ms,
        "toTime_ms": lambda _: to_ms,
        "timeFilter": lambda a: f"{_one(a)} >= {from_s} AND {_one(a)} <= {to_s}",
        "timeFilter_ms": lambda a: f"{_one(a)} >= {from_ms} AND {_one(a)} <= {to_ms}",
        "dateFilter": lambda a: f"{_one(a)} >= {_date(start)} AND {_one(a)} <= {_date(end)}",
        "dateTimeFilter": date_time_filter,
        "dt": date_time_filter,
        "timeInterval": lambda a: (
            f"toStartOfInterval(toDateTime({_one(a)}), INTERVAL {interval_s} second)"
        ),
        "timeInterval_ms": lambda a: (
            f"toStartOfInterval(toDateTime64({_one(a)}, 3), INTERVAL {interval_ms} millisecond)"
        ),
        "interval_s": lambda _: str(interval_s),
        # grafana-plugin-sdk-go's defaults, for the names the plugin does not define itself
        "interval": lambda _: _format_interval(request.interval_s * 1000),
        "interval_ms": lambda _: str(int(request.interval_s * 1000)),
        "timeFrom": lambda a: f"{_one(a)} >= '{rfc3339(start)}'",
        "timeTo": lambda a: f"{_one(a)} <= '{rfc3339(end)}'",
    }


def _macro_args(rest: str) -> tuple[list[str] | None, int]:
    """sqlutil.parseArgs: a bracketed list right at the start of `rest`, or none."""
    if not rest.startswith("("):
        return None, 0
    args: list[str] = []
    depth = 0
    current: list[str] = []
    for index, char in enumerate(rest):
        if char == "(":
            depth += 1
            if depth == 1:
                continue
        elif char == ")":
            depth -= 1
            if depth == 0:
                args.append("".join(current).strip())
                return args, index + 1
        elif char == "," and depth == 1:
            args.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    raise MacroError("failed to parse macro arguments (missing close bracket?)")


def expand_backend_macros(sql: str, request: QueryRequest) -> str:
    macros = _macros(request)
    for name in sorted(macros, key=len, reverse=True):
        matches = []
        for found in re.finditer(rf"\$__{re.escape(name)}\b", sql):
            args, length = _macro_args(sql[found.end() :])
            matches.append((sql[found.start() : found.end() + length], args or []))
        for text, args in matches:
            sql = sql.replace(text, macros[name](args))
    return sql


def interpolate_in_browser(sql: str, request: QueryRequest) -> str:
    """What Grafana's browser sends to the plugin's backend (steps 1 and 2)."""
    return replace_variables(apply_conditional_all(sql, request.variables), request)


def interpolate(sql: str, request: QueryRequest) -> str:
    """The SQL ClickHouse runs for a panel query or variable query."""
    sql = expand_backend_macros(interpolate_in_browser(sql, request), request)
    if "$__" in sql:
        left = re.findall(r"\$__\w+", sql)
        raise MacroError(f"macros left unexpanded: {sorted(set(left))}")
    return sql


def interval_for(interval: str | None) -> float:
    """A panel's minimum interval ('1m', '30s', '1h') in seconds."""
    if not interval:
        return 0.0
    match = re.fullmatch(r"(\d+)(ms|s|m|h|d)", interval)
    if not match:
        raise MacroError(f"cannot read the interval {interval!r}")
    size = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
    return math.prod((int(match.group(1)), size))
