"""The budgets and thresholds of the dashboards and alert rules, in one table.

A stat panel turns orange at half its budget and red at the budget; the alert rule on the same
figure fires past the budget. Each has a default; `assay grafana files --budget NAME=VALUE` (or
`ASSAY_BUDGET_<NAME>` in the environment) writes the files with another.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace

ENV_PREFIX = "ASSAY_BUDGET_"


class BudgetError(ValueError):
    """An unknown budget name or a value that is no finite, non-negative number."""


@dataclass(frozen=True)
class Budget:
    name: str
    value: float
    unit: str  # a Grafana unit id: how the value reads on the panels
    meaning: str

    def text(self) -> str:
        """The value as people write it for this unit."""
        if self.unit == "percentunit":
            return f"{self.value * 100:g} %"
        if self.unit == "currencyUSD":
            return f"${self.value:g}"
        suffix = {"ms": " ms", "s": " s"}.get(self.unit, "")
        return f"{self.value:g}{suffix}"


DEFAULTS: tuple[Budget, ...] = (
    Budget(
        "error_rate",
        0.05,
        "percentunit",
        'Share of a service\'s calls that fail, over 10 minutes (the "Error rate" stat: over '
        "the range).",
    ),
    Budget(
        "min_calls",
        20,
        "short",
        "Calls a service needs in those 10 minutes before its error rate is judged.",
    ),
    Budget(
        "latency_p95_ms",
        10_000,
        "ms",
        "95th percentile of a model's call duration over 10 minutes.",
    ),
    Budget("daily_cost_usd", 100, "currencyUSD", "Cost of all production calls today (UTC)."),
    Budget(
        "rate_limited_calls",
        10,
        "short",
        "Calls of one provider refused for its rate limit (HTTP 429, throttling) in 5 minutes.",
    ),
    Budget(
        "pass_rate_drop",
        0.10,
        "percentunit",
        "How far an evaluator's online pass rate on a prompt's newest version may fall below "
        "the version before it (past 7 days).",
    ),
    Budget("min_scores", 20, "short", "Scores each prompt version needs before it is compared."),
    Budget(
        "judge_failure_rate",
        0.20,
        "percentunit",
        "Share of an online evaluator's runs that failed (judge errors, timeouts) in 15 minutes.",
    ),
    Budget("refused_requests", 10, "short", "Requests one collector refused in 5 minutes."),
    Budget(
        "collector_silence_s",
        120,
        "s",
        "Time since a collector last wrote its counters: it stopped, or cannot reach the store "
        "(every collector at once: the store is down).",
    ),
    Budget(
        "deadlettered_batches",
        0,
        "short",
        "Batches one collector moved to its dead-letter folder in 15 minutes (rows the store "
        "refused for their values; any is data to look at with `assay deadletter`).",
    ),
    Budget(
        "spool_age_s",
        300,
        "s",
        "Age of the oldest data a collector holds for the store: the store is not draining.",
    ),
)


def budgets(overrides: Mapping[str, float | str] | None = None) -> dict[str, Budget]:
    """The budgets by name: the defaults, with `overrides` (name → value) applied."""
    table = {b.name: b for b in DEFAULTS}
    for name, raw in (overrides or {}).items():
        if name not in table:
            raise BudgetError(f"no budget named {name!r}; known: {', '.join(table)}")
        try:
            value = float(raw)
        except ValueError as exc:
            raise BudgetError(f"budget {name}: {raw!r} is not a number") from exc
        if not math.isfinite(value) or value < 0:
            raise BudgetError(f"budget {name}: {raw!r} must be a finite number >= 0")
        table[name] = replace(table[name], value=value)
    return table


def overrides_from(items: tuple[str, ...] | list[str]) -> dict[str, str]:
    """Overrides from `ASSAY_BUDGET_<NAME>` variables, then `NAME=VALUE` items (the command
    line's `--budget`), which win."""
    out = {  # an empty variable is unset (compose passes every one, set or not)
        key[len(ENV_PREFIX) :].lower(): value
        for key, value in os.environ.items()
        if key.startswith(ENV_PREFIX) and value.strip()
    }
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise BudgetError(f"{item!r}: write a budget as NAME=VALUE")
        out[name.strip()] = value.strip()
    return out
