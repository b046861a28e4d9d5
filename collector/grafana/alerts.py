"""Alert rules as code: what each rule asks ClickHouse and past which budget it fires, rendered
as Grafana's alerting file provisioning (rule groups, one contact point, the notification
policy) by the same generator as the dashboards.

Every rule's query answers in Grafana's tabular form for alerting: text columns are the labels
of an alert instance (one row each, unique), one number is its value; a threshold expression
compares that value with the rule's budget. The queries use only the ClickHouse plugin's
backend macros (`$__timeFilter`, `$__toTime`), which alert rules have; dashboard variables they
do not. Experiment traffic never counts toward an alert.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from assay.collector.grafana.budgets import Budget
from assay.collector.grafana.sql import (
    DATABASE,
    LATENCY,
    RATE_LIMITED,
    prompt_versions_compared,
)
from assay.collector.schema import ScoreSource

EXPRESSION_UID = "__expr__"
CONTACT_POINT = "Assay alerts"
CONTACT_POINT_UID = "assay-alerts"
PRODUCTION = "NOT is_experiment"


@dataclass(frozen=True)
class RuleGroup:
    name: str
    interval: str  # how often Grafana evaluates its rules


CALLS = RuleGroup("LLM calls", "1m")
EVALUATIONS = RuleGroup("Evaluations", "5m")
COLLECTORS = RuleGroup("Collectors", "1m")


@dataclass(frozen=True)
class AlertRule:
    """One Grafana-managed rule on the Assay data source."""

    uid: str
    title: str
    group: RuleGroup
    sql: str  # table form: label columns (text) and one numeric value
    window_s: int  # the query's time range: the last `window_s` seconds
    budget: str  # the budget whose value is the threshold
    unit: str
    summary: str  # one line, may use {{ $labels.x }}
    description: str
    panel: tuple[str, str]  # (dashboard uid, panel title) showing the same figure
    severity: str = "warning"
    pending: str = "5m"  # how long the condition holds before the rule fires
    no_data: str = "OK"  # no rows: nothing to judge (no traffic)
    # The query failed (ClickHouse down): "Error" raises Grafana's DatasourceError alert for the
    # rule, "Alerting" fires the rule itself.
    exec_error: str = "Error"


def rules(budgets: Mapping[str, Budget]) -> list[AlertRule]:
    """Every alert rule, with the budgets' values where a query needs one (minimum counts)."""
    min_calls = int(budgets["min_calls"].value)
    min_scores = int(budgets["min_scores"].value)
    minute_rollup = f"{DATABASE}.llm_calls_1m\nWHERE $__timeFilter(minute) AND {PRODUCTION}"
    return [
        AlertRule(
            "assay-error-rate",
            "Error rate of a service over budget",
            CALLS,
            "SELECT service_name, sum(errors) / sum(calls) AS error_rate\n"
            f"FROM {minute_rollup}\nGROUP BY service_name HAVING sum(calls) >= {min_calls}",
            600,
            "error_rate",
            "percentunit",
            "{{ $labels.service_name }}: {{ humanizePercentage $values.A.Value }} of its calls "
            "failed in 10 minutes",
            f"Share of a service's calls that ended in an error over the last 10 minutes (at "
            f"least {min_calls} calls), against the error-rate budget. Errors by class and type "
            "on the LLM monitoring dashboard say what failed.",
            ("assay-llm-monitoring", "Error rate by service"),
            severity="critical",
        ),
        AlertRule(
            "assay-latency-p95",
            "p95 latency of a model over budget",
            CALLS,
            f"SELECT model, {LATENCY}[2] AS p95_ms\n"
            f"FROM {minute_rollup}\nGROUP BY model HAVING sum(calls) >= {min_calls}",
            600,
            "latency_p95_ms",
            "ms",
            "{{ $labels.model }}: p95 latency {{ humanize $values.A.Value }} ms over 10 minutes",
            f"95th percentile of a model's call duration over the last 10 minutes (at least "
            f"{min_calls} calls), against the latency budget.",
            ("assay-llm-monitoring", "p95 latency by model"),
        ),
        AlertRule(
            "assay-daily-cost",
            "Cost today over budget",
            CALLS,
            "SELECT sum(cost_usd) AS cost_today_usd\n"
            f"FROM {DATABASE}.llm_calls_1h\n"
            "WHERE minute >= toStartOfDay($__toTime) AND minute <= $__toTime "
            f"AND {PRODUCTION}",
            3600,
            "daily_cost_usd",
            "currencyUSD",
            "Production LLM calls cost {{ humanize $values.A.Value }} USD today",
            "Cost of all production calls since midnight (UTC), against the daily budget. Cost "
            "by model, provider, service and prompt version on the LLM monitoring dashboard "
            "says where it went.",
            ("assay-llm-monitoring", "Cost today"),
            severity="critical",
            pending="0s",
        ),
        AlertRule(
            "assay-rate-limits",
            "Rate limits of a provider bursting",
            CALLS,
            "SELECT provider, count() AS rate_limited_calls\n"
            f"FROM {DATABASE}.llm_errors\n"
            f"WHERE $__timeFilter(timestamp) AND {PRODUCTION} AND {RATE_LIMITED}\n"
            "GROUP BY provider",
            300,
            "rate_limited_calls",
            "short",
            "{{ $labels.provider }}: {{ $values.A.Value }} calls refused for its rate limit "
            "in 5 minutes",
            "Calls a provider refused for its rate limit (HTTP 429, throttling, exhausted quota) "
            "in the last 5 minutes, against the tolerated burst.",
            ("assay-llm-monitoring", "Rate-limited calls by provider"),
            pending="1m",
        ),
        AlertRule(
            "assay-pass-rate-drop",
            "Online pass rate fell with a new prompt version",
            EVALUATIONS,
            "SELECT evaluator, prompt_name, previous_version, newest_version,\n"
            "  previous_pass_rate - newest_pass_rate AS pass_rate_drop\n"
            f"FROM {prompt_versions_compared(PRODUCTION, min_scores)}",
            7 * 86400,
            "pass_rate_drop",
            "percentunit",
            "{{ $labels.evaluator }} on {{ $labels.prompt_name }}: {{ $labels.newest_version }} "
            "passes {{ humanizePercentage $values.A.Value }} less often than "
            "{{ $labels.previous_version }}",
            f"A release comparison: per online evaluator and prompt, the pass rate of the "
            f"prompt's newest version (first seen last) against the version before it, over the "
            f"last 7 days, each with at least {min_scores} scores.",
            ("assay-evaluations", "Pass rate: newest prompt version vs the one before"),
            pending="15m",
        ),
        AlertRule(
            "assay-judge-failures",
            "An online evaluator keeps failing",
            EVALUATIONS,
            "SELECT name AS evaluator, countIf(error != '') / count() AS failure_rate\n"
            f"FROM {DATABASE}.scores\n"
            f"WHERE source = '{ScoreSource.ONLINE}' AND $__timeFilter(timestamp)\n"
            f"GROUP BY evaluator HAVING count() >= {min_scores}",
            900,
            "judge_failure_rate",
            "percentunit",
            "{{ $labels.evaluator }}: {{ humanizePercentage $values.A.Value }} of its runs "
            "failed in 15 minutes",
            f"Share of an online evaluator's runs that ended in an error (a judge's timeout, "
            f"refusal or unreadable answer) over the last 15 minutes, at least {min_scores} runs.",
            ("assay-evaluations", "Score trend per evaluator (online)"),
        ),
        AlertRule(
            "assay-collector-refusals",
            "A collector refuses requests",
            COLLECTORS,
            "SELECT instance, toFloat64(sum(requests_refused)) AS refused_requests\n"
            f"FROM {DATABASE}.collector_stats\nWHERE $__timeFilter(timestamp)\n"
            "GROUP BY instance",
            300,
            "refused_requests",
            "short",
            "{{ $labels.instance }} refused {{ $values.A.Value }} requests in 5 minutes",
            "Requests a collector answered with an error in the last 5 minutes: overload "
            "(back-pressure), invalid or too large data, missing credentials. Refused requests by "
            "reason on the Collectors dashboard say which.",
            ("assay-collectors", "Refused requests by reason"),
        ),
        AlertRule(
            "assay-dead-letters",
            "A collector dead-letters data",
            COLLECTORS,
            "SELECT instance, toFloat64(sum(deadlettered_batches)) AS deadlettered_batches\n"
            f"FROM {DATABASE}.collector_stats\nWHERE $__timeFilter(timestamp)\n"
            "GROUP BY instance",
            900,
            "deadlettered_batches",
            "short",
            "{{ $labels.instance }} moved {{ $values.A.Value }} batches to its dead-letter "
            "folder in 15 minutes",
            "Batches a collector moved to its dead-letter folder in the last 15 minutes: rows "
            "the store refused for their values (a type, a parse or a range error), kept aside "
            "so the rest of the batch was stored. `assay deadletter` lists and replays them.",
            ("assay-collectors", "Dead-lettered batches"),
            pending="0s",
        ),
        AlertRule(
            "assay-spool-age",
            "A collector's spool is not draining",
            COLLECTORS,
            "SELECT instance, max(spool_oldest_age_s) AS oldest_spooled_s\n"
            f"FROM {DATABASE}.collector_stats\nWHERE $__timeFilter(timestamp)\n"
            "GROUP BY instance",
            120,
            "spool_age_s",
            "s",
            "{{ $labels.instance }} holds data {{ $values.A.Value }} s old for the store",
            "The oldest data a collector holds for the store: it keeps accepting into its spool "
            "while the store is slow or down, up to the spool's size limit.",
            ("assay-collectors", "Oldest spooled data"),
            severity="critical",
            pending="2m",
        ),
        AlertRule(
            "assay-collector-silent",
            "A collector stopped reporting",
            COLLECTORS,
            "SELECT instance,\n"
            "  toFloat64(dateDiff('second', max(timestamp), $__toTime)) AS silent_s\n"
            f"FROM {DATABASE}.collector_stats\nWHERE $__timeFilter(timestamp)\n"
            "GROUP BY instance",
            3600,
            "collector_silence_s",
            "s",
            "{{ $labels.instance }} wrote no counters for {{ $values.A.Value }} s",
            "A collector that reported in the last hour wrote nothing since: it stopped, or it "
            "cannot reach the store (its spool then fills). When every collector goes silent "
            "at once, the store-down rule fires too.",
            ("assay-collectors", "Collectors reporting"),
            severity="critical",
            pending="0s",
        ),
        AlertRule(
            "assay-store-down",
            "The store is down",
            COLLECTORS,
            "SELECT toFloat64(dateDiff('second', max(timestamp), $__toTime)) AS since_write_s\n"
            f"FROM {DATABASE}.collector_stats\nWHERE $__timeFilter(timestamp)\n"
            "HAVING count() > 0",
            3600,
            "collector_silence_s",
            "s",
            "The store took no write from any collector for {{ $values.A.Value }} s, or it does "
            "not answer Grafana",
            "Either ClickHouse does not answer Grafana's query (down, unreachable, refusing the "
            "user): the rule fires on the query's error; or it answers but no collector that "
            "reported in the last hour has written to it since: every collector writes its "
            "counters every few seconds, so all of them falling silent at once is the store "
            "taking no writes (read-only, disk full, unreachable from the collectors, whose "
            "spools then fill).",
            ("assay-collectors", "Since the store last took a write"),
            severity="critical",
            pending="1m",
            exec_error="Alerting",
        ),
    ]


def _query(rule: AlertRule, datasource_uid: str, plugin_id: str) -> dict[str, Any]:
    return {
        "refId": "A",
        "queryType": "table",
        "relativeTimeRange": {"from": rule.window_s, "to": 0},
        "datasourceUid": datasource_uid,
        "model": {
            "datasource": {"type": plugin_id, "uid": datasource_uid},
            "editorType": "sql",
            "format": 1,  # table: labels and one value per row
            "queryType": "table",
            "rawSql": rule.sql,
            "refId": "A",
            "intervalMs": 1000,
            "maxDataPoints": 43200,
        },
    }


def _threshold(value: float) -> dict[str, Any]:
    return {
        "refId": "B",
        "queryType": "",
        "relativeTimeRange": {"from": 0, "to": 0},
        "datasourceUid": EXPRESSION_UID,
        "model": {
            "datasource": {"type": EXPRESSION_UID, "uid": EXPRESSION_UID},
            "type": "threshold",
            "expression": "A",
            "conditions": [{"evaluator": {"type": "gt", "params": [value]}}],
            "refId": "B",
        },
    }


def rule_groups(
    budgets: Mapping[str, Budget],
    panel_ids: Mapping[tuple[str, str], int],
    folder: str,
    datasource_uid: str,
    plugin_id: str,
) -> dict[str, Any]:
    """The rule groups, in `folder`, as Grafana's alerting provisioning file holds them;
    `panel_ids` maps (dashboard uid, panel title) to the panel id each rule links to."""
    groups: dict[str, dict[str, Any]] = {}
    for rule in rules(budgets):
        budget = budgets[rule.budget]
        group = groups.setdefault(
            rule.group.name,
            {
                "orgId": 1,
                "name": rule.group.name,
                "folder": folder,
                "interval": rule.group.interval,
                "rules": [],
            },
        )
        group["rules"].append(
            {
                "uid": rule.uid,
                "title": rule.title,
                "condition": "B",
                "data": [_query(rule, datasource_uid, plugin_id), _threshold(budget.value)],
                "dashboardUid": rule.panel[0],
                "panelId": panel_ids[rule.panel],
                "noDataState": rule.no_data,
                "execErrState": rule.exec_error,
                "for": rule.pending,
                "annotations": {
                    "summary": rule.summary,
                    "description": f"{rule.description} Budget `{budget.name}`: {budget.text()}.",
                    "unit": rule.unit,
                },
                "labels": {"severity": rule.severity, "source": "assay"},
                "isPaused": False,
            }
        )
    return {"apiVersion": 1, "groups": list(groups.values())}


class ContactError(ValueError):
    """A destination for alerts that names no integration Assay can set up."""


# Integrations whose one required setting is the URL they post to.
_URL_INTEGRATIONS = ("slack", "webhook", "discord", "teams", "googlechat")
DEFAULT_ADDRESSES = "alerts@example.com"


def contact_point(to: str = "") -> dict[str, Any]:
    """The contact point every Assay alert goes to, from one setting (`ASSAY_ALERTS_TO`):
    `https://hooks.slack.com/...` (Slack), `ops@example.com[,...]` or `mailto:...` (e-mail,
    with Grafana's SMTP settings), any other `https://...` (a webhook), or an explicit
    `slack:`, `webhook:`, `discord:`, `teams:`, `googlechat:` before the URL. Empty: e-mail to
    a placeholder address, as Grafana's own default contact point does."""
    to = to.strip()
    kind, _, rest = to.partition(":")
    if kind in _URL_INTEGRATIONS and rest.startswith(("http://", "https://")):
        kind, target = kind, rest
    elif kind == "mailto":
        kind, target = "email", rest
    elif not to or ("@" in to and "://" not in to):
        kind, target = "email", to or DEFAULT_ADDRESSES
    elif kind in ("http", "https"):
        host = urlsplit(to).hostname or ""
        kind, target = ("slack" if host == "hooks.slack.com" else "webhook"), to
    else:
        raise ContactError(
            f"cannot send alerts to {to!r}: give an https:// URL (Slack or a webhook), e-mail "
            f"addresses, or one of {', '.join(_URL_INTEGRATIONS)} followed by ':' and a URL"
        )
    if kind == "email":
        settings: dict[str, Any] = {"addresses": ";".join(a.strip() for a in target.split(","))}
    else:
        if not urlsplit(target).hostname:
            raise ContactError(f"cannot send alerts to {to!r}: the URL has no host")
        settings = {"url": target}
    return {
        "apiVersion": 1,
        "contactPoints": [
            {
                "orgId": 1,
                "name": CONTACT_POINT,
                "receivers": [
                    {
                        "uid": CONTACT_POINT_UID,
                        "type": kind,
                        "settings": settings,
                        "disableResolveMessage": False,
                    }
                ],
            }
        ],
    }


def notification_policy() -> dict[str, Any]:
    """The organisation's root policy: every alert to the Assay contact point, grouped by rule.
    (It replaces the root policy of the Grafana it is provisioned into.)"""
    return {
        "apiVersion": 1,
        "policies": [
            {
                "orgId": 1,
                "receiver": CONTACT_POINT,
                "group_by": ["grafana_folder", "alertname"],
                "group_wait": "30s",
                "group_interval": "5m",
                "repeat_interval": "4h",
            }
        ],
    }
