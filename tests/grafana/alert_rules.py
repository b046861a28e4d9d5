"""The checked-in alert rules, evaluated as Grafana evaluates them: the query with the plugin's
macros expanded over the rule's time range, its rows read as alert instances (text columns are
labels, the one number the value), and the threshold expression applied; a query that fails
because the store is unreachable gives the rule's execErrState."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from assay.collector.grafana.macros import QueryRequest, interpolate
from assay.collector.grafana.sql import DATABASE

ROOT = Path(__file__).resolve().parent.parent.parent
ALERTING = ROOT / "grafana" / "provisioning" / "alerting"

# Runs a query: (column names, rows).
Runner = Callable[[str], tuple[list[str], list[tuple[Any, ...]]]]


@dataclass(frozen=True)
class Instance:
    labels: tuple[tuple[str, str], ...]
    value: float

    def label(self, name: str) -> str:
        return dict(self.labels)[name]


class StoreUnreachable(Exception):
    """What a runner raises when ClickHouse does not answer (the query fails in Grafana)."""


@dataclass(frozen=True)
class Evaluation:
    instances: list[Instance]
    threshold: float
    error: str = ""  # the query failed: what the data source said
    on_error: str = "Error"  # the rule's execErrState

    @property
    def firing(self) -> list[Instance]:
        """The rule's own firing instances; on a failed query, one without labels if the
        rule's execErrState is Alerting."""
        if self.error:
            return [Instance((), float("inf"))] if self.on_error == "Alerting" else []
        return [i for i in self.instances if i.value > self.threshold]

    @property
    def datasource_error(self) -> bool:
        """Grafana raises its DatasourceError alert for the rule instead of firing it."""
        return bool(self.error) and self.on_error == "Error"


def checked_in_rules() -> Iterator[dict[str, Any]]:
    document = yaml.safe_load((ALERTING / "rules.yaml").read_text(encoding="utf-8"))
    for group in document["groups"]:
        yield from group["rules"]


def rule(uid: str) -> dict[str, Any]:
    [found] = [r for r in checked_in_rules() if r["uid"] == uid]
    return found


def query_sql(alert: dict[str, Any], now: datetime, database: str = DATABASE) -> str:
    """The rule's query as ClickHouse gets it when Grafana evaluates the rule at `now`."""
    query = alert["data"][0]
    window = query["relativeTimeRange"]
    request = QueryRequest(
        now - timedelta(seconds=window["from"]), now - timedelta(seconds=window["to"])
    )
    sql: str = interpolate(query["model"]["rawSql"], request)
    return sql.replace(f"{DATABASE}.", f"{database}.")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def evaluate(
    run: Runner, alert: dict[str, Any], now: datetime, database: str = DATABASE
) -> Evaluation:
    """The rule's alert instances at `now`; asserts the query answers in the tabular form
    Grafana alerts on (one numeric column, text labels, one row per label set)."""
    [condition] = alert["data"][1]["model"]["conditions"]
    assert condition["evaluator"]["type"] == "gt"
    threshold = float(condition["evaluator"]["params"][0])
    try:
        names, rows = run(query_sql(alert, now, database))
    except StoreUnreachable as exc:
        return Evaluation([], threshold, error=str(exc), on_error=alert["execErrState"])
    instances = []
    if rows:
        numeric = [i for i in range(len(names)) if any(_is_number(r[i]) for r in rows)]
        assert len(numeric) == 1, f"{alert['uid']}: one numeric column, not {names}"
        [value_at] = numeric
        for row in rows:
            labels = tuple((n, row[i]) for i, n in enumerate(names) if i != value_at)
            assert all(isinstance(v, str) for _, v in labels), (alert["uid"], labels)
            if row[value_at] is not None:  # no value: Grafana has nothing to compare
                instances.append(Instance(labels, float(row[value_at])))
        label_sets = [i.labels for i in instances]
        assert len(set(label_sets)) == len(label_sets), f"{alert['uid']}: repeated labels"
    return Evaluation(instances, threshold)
