"""The "Collectors" dashboard: each collector instance's own counters, from the
`collector_stats` rows every collector writes every few seconds (collector/monitoring.py).

Counts in `collector_stats` are per interval, so a rate is the bucket's sum over the seconds
the rows cover; gauges (spool, queue) are the bucket's maximum.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.models.dashboard import Panel

from assay.collector.grafana.budgets import Budget
from assay.collector.grafana.dashboard import new_dashboard
from assay.collector.grafana.panels import (
    any_is_bad,
    at_least_one,
    budget_steps,
    stat_value,
    table_of,
    time_series,
)
from assay.collector.grafana.sql import DATABASE, Variable, any_of, options

INSTANCE = Variable(
    "instance",
    "Collector",
    "instance",
    options("instance", f"{DATABASE}.collector_stats WHERE $__timeFilter(timestamp)"),
)
# Collectors sample every 5 s by default: buckets finer than that would be empty.
STATS_INTERVAL = "10s"
IN_RANGE = f"WHERE $__timeFilter(timestamp)\n  AND {any_of(INSTANCE)}"
STATS = f"{DATABASE}.collector_stats\n{IN_RANGE}"


def _per_instance(
    title: str, value: str, unit: str, description: str, budget: Budget | None = None
) -> cogbuilder.Builder[Panel]:
    return time_series(
        title,
        f"SELECT $__timeInterval(timestamp) AS time, instance, {value} AS value\n"
        f"FROM {STATS}\nGROUP BY time, instance ORDER BY time",
        unit,
        description,
        min_interval=STATS_INTERVAL,
        budget=budget,
    )


def collectors(budgets: dict[str, Budget]) -> Dashboard:
    rate = "sum({0}) / greatest(sum(interval_s), 1)"
    return (
        new_dashboard(
            "assay-collectors",
            "Assay · Collectors",
            "What every collector instance received, refused, wrote and queued.",
            [INSTANCE],
            experiment_switch=False,
        )
        .with_panel(
            stat_value(
                "Collectors reporting",
                "SELECT uniqExact(instance) AS collectors FROM "
                f"{DATABASE}.collector_stats\n"
                "WHERE timestamp >= now() - INTERVAL 1 MINUTE AND $__timeFilter(timestamp)\n"
                f"  AND {any_of(INSTANCE)}",
                "short",
                "Instances that wrote their counters in the last minute (red: none).",
                at_least_one(),
            )
        )
        .with_panel(
            stat_value(
                "Spans received",
                f"SELECT sum(spans_received) AS spans FROM {STATS}",
                "short",
                "Spans accepted over the range, all selected collectors.",
            )
        )
        .with_panel(
            stat_value(
                "Requests refused",
                f"SELECT sum(requests_refused) AS refused FROM {STATS}",
                "short",
                "Requests answered with an error (see the reasons below).",
                any_is_bad("orange"),
            )
        )
        .with_panel(
            stat_value(
                "Write failures",
                f"SELECT sum(write_failures) AS failures FROM {STATS}",
                "short",
                "Store writes that failed and were retried.",
                any_is_bad(),
            )
        )
        .with_panel(
            stat_value(
                "Rows deduplicated",
                f"SELECT sum(arraySum(mapValues(deduplicated))) AS rows FROM {STATS}",
                "short",
                "Rows not stored or not counted as written because the store already had "
                "them: a spool segment replayed after a crash or a lost reply, or calls and "
                "tool calls a client sent again (its exporter retried after losing the "
                "acknowledgement; their rows and spans). A plain span sent again in a later "
                "request is not looked up: it counts as written again (otel_traces keeps one "
                "row). Neither happens on a quiet, clean run: the collector's log names the "
                "segment and the tables.",
                any_is_bad("orange"),
            )
        )
        .with_panel(
            stat_value(
                "Dead-lettered batches",
                f"SELECT sum(deadlettered_batches) AS batches FROM {STATS}",
                "short",
                "Batches moved to a collector's dead-letter folder: rows the store refused for "
                "their values, kept aside so the rest was stored (red: any; see `assay "
                "deadletter`).",
                any_is_bad(),
            )
        )
        .with_panel(
            stat_value(
                "Evaluations dropped",
                f"SELECT sum(evaluation_drops) AS dropped FROM {STATS}",
                "short",
                "Online evaluations dropped because the queue was full.",
                any_is_bad("orange"),
            )
        )
        .with_panel(
            stat_value(
                "Largest spool",
                f"SELECT max(spool_bytes) AS spool_bytes FROM {STATS}",
                "bytes",
                "The most data any collector held waiting for the store.",
            )
        )
        .with_panel(
            stat_value(
                "Oldest spooled data",
                f"SELECT max(spool_oldest_age_s) AS age_s FROM {STATS}",
                "s",
                "The oldest data any collector held for the store in the range, against the "
                "spool-age budget: past it, the store is not draining.",
                budget_steps(budgets["spool_age_s"]),
            )
        )
        .with_panel(
            stat_value(
                "Since the store last took a write",
                "SELECT dateDiff('second', max(timestamp), $__toTime) AS since_s\n"
                f"FROM {DATABASE}.collector_stats\nWHERE $__timeFilter(timestamp)\n"
                "HAVING count() > 0",
                "s",
                "Time since any collector last wrote its counters to the store, whichever "
                "collector is selected: every collector writes every few seconds, so a long "
                "silence from all of them at once is the store taking no writes (red at the "
                "collector-silence budget). No value: no collector reported in the range.",
                budget_steps(budgets["collector_silence_s"]),
            )
        )
        .with_panel(
            stat_value(
                "Store unreachable",
                f"SELECT countIf(NOT store_reachable) AS reports FROM {STATS}",
                "short",
                "Reports in which a collector could not reach the store (red: any).",
                any_is_bad(),
            )
        )
        .with_panel(
            _per_instance(
                "Spans received per second",
                rate.format("spans_received"),
                "short",
                "Spans accepted per second, by collector.",
            )
        )
        .with_panel(
            _per_instance(
                "LLM calls written per second",
                rate.format("llm_calls_written"),
                "short",
                "llm_calls rows stored per second, by collector.",
            )
        )
        .with_panel(
            time_series(
                "Refused requests by reason",
                "SELECT $__timeInterval(timestamp) AS time, reason, sum(n) AS requests\n"
                f"FROM {DATABASE}.collector_stats\n"
                "ARRAY JOIN mapKeys(refused) AS reason, mapValues(refused) AS n\n"
                f"{IN_RANGE}\n"
                "GROUP BY time, reason ORDER BY time",
                "short",
                "Refusals: overloaded (back-pressure: the spool's size limit), disk_full (the "
                "spool's disk refused the record), invalid, too_large, unauthenticated, "
                "media_type.",
                bars=True,
                min_interval=STATS_INTERVAL,
            )
        )
        .with_panel(
            _per_instance(
                "Write time (mean per batch)",
                "sum(write_ms_avg * writes) / greatest(sum(writes), 1)",
                "ms",
                "Time to store one spool segment, by collector.",
            )
        )
        .with_panel(
            _per_instance(
                "Spool",
                "max(spool_bytes)",
                "bytes",
                "Accepted data waiting for the store, by collector.",
            )
        )
        .with_panel(
            _per_instance(
                "Oldest spooled data",
                "max(spool_oldest_age_s)",
                "s",
                "Age of the oldest data waiting for the store: grows while the store is down; "
                "the dashed line is the age the alert rule tolerates.",
                budgets["spool_age_s"],
            )
        )
        .with_panel(
            _per_instance(
                "Evaluation queue",
                "max(evaluation_queue)",
                "short",
                "Online evaluations waiting, by collector.",
            )
        )
        .with_panel(
            table_of(
                "Collectors",
                "SELECT instance, argMax(status, timestamp) AS status,\n"
                "  max(timestamp) AS last_seen, argMax(host, timestamp) AS host,\n"
                "  argMax(version, timestamp) AS version,\n"
                "  sum(spans_received) AS spans_received, sum(requests_refused) AS refused,\n"
                "  sum(write_failures) AS write_failures, max(spool_bytes) AS max_spool_bytes\n"
                f"FROM {STATS}\nGROUP BY instance ORDER BY instance",
                "Every collector seen in the range: its latest status and its totals.",
                {
                    "spans_received": "short",
                    "refused": "short",
                    "write_failures": "short",
                    "max_spool_bytes": "bytes",
                },
                width=24,
            )
        )
    )
