"""The Agents dashboard counts what it says: on a few runs written as the collector writes them
(trace_spans, tool_calls, run-level scores), each stat gives the figure worked out by hand, and
a trace without agent structure is no run."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from assay.collector.completed_runs import write_all_completed
from assay.collector.grafana.macros import interpolate, interval_for
from assay.collector.grafana.sql import DATABASE
from assay.collector.schema import ScoreRow, ToolCallRow, TraceSpanRow, insert_arguments
from assay.collector.store.embedded import EmbeddedStore
from tests.conftest import own_database
from tests.grafana.panel_queries import panel_queries, resolve_variables

NOW = datetime.now(timezone.utc).replace(microsecond=0)


class Database:
    """A database of its own, answering the dashboard's queries written for `assay`."""

    def __init__(self, store: EmbeddedStore) -> None:
        self.store = store

    def query(self, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        return self.store.query(sql.replace(f"{DATABASE}.", f"{self.store.database}."))

    def write(self, rows: list[Any]) -> None:
        table, columns, names = insert_arguments(rows)
        self.store.insert(table, columns, names)


def _ns(minutes_ago: float) -> int:
    return int((NOW - timedelta(minutes=minutes_ago)).timestamp() * 1e9)


def _run(
    trace: str, agent: str, status: str, llm_costs: list[float], tools: list[tuple[str, str]]
) -> tuple[list[TraceSpanRow], list[ToolCallRow]]:
    """A run ten minutes ago: the root agent span, its LLM calls and its tool calls."""
    start = _ns(10)
    root = TraceSpanRow(
        trace,
        f"{trace}-root",
        "",
        start,
        start + 9_000_000_000,
        "shop-agent",
        f"invoke_agent {agent}",
        "agent",
        status,
        "genai",
        agent_name=agent,
    )
    spans, calls = [root], []
    for i, cost in enumerate(llm_costs):
        at = start + (i + 1) * 1_000_000_000
        spans.append(
            TraceSpanRow(
                trace,
                f"{trace}-llm{i}",
                root.span_id,
                at,
                at + 500_000_000,
                "shop-agent",
                "chat",
                "llm",
                "ok",
                "genai",
                agent_name=agent,
                llm=True,
                input_tokens=100,
                output_tokens=10,
                cost_usd=cost,
            )
        )
    for i, (tool, tool_status) in enumerate(tools):
        at = start + (i + 5) * 1_000_000_000
        span = f"{trace}-tool{i}"
        spans.append(
            TraceSpanRow(
                trace,
                span,
                root.span_id,
                at,
                at + 200_000_000,
                "shop-agent",
                f"execute_tool {tool}",
                "tool",
                tool_status,
                "genai",
                agent_name=agent,
                tool_name=tool,
            )
        )
        calls.append(
            ToolCallRow(
                at,
                trace,
                span,
                root.span_id,
                "shop-agent",
                tool,
                agent_name=agent,
                status=tool_status,
                duration_ms=200.0 * (i + 1),
            )
        )
    return spans, calls


@pytest.fixture
def runs(embedded_store: EmbeddedStore) -> Iterator[Database]:
    with own_database(embedded_store, "agents") as store:
        db = Database(store)
        # A run that recovered from a failed search (2 LLM calls, 2 tool calls), a failed run (3
        # LLM calls, one tool call), and a plain chat trace: one LLM span, no agent, no tool.
        ok_spans, ok_calls = _run(
            "t-ok", "planner", "ok", [0.01, 0.03], [("search", "error"), ("fetch", "ok")]
        )
        bad_spans, bad_calls = _run(
            "t-bad", "planner", "error", [0.02, 0.02, 0.02], [("search", "ok")]
        )
        chat = TraceSpanRow(
            "t-chat",
            "t-chat-1",
            "",
            _ns(5),
            _ns(5) + 1_000_000,
            "shop",
            "chat",
            "llm",
            "ok",
            "genai",
            llm=True,
            cost_usd=5.0,
        )
        db.write([*ok_spans, *bad_spans, chat])
        db.write([*ok_calls, *bad_calls])
        db.write(
            [
                ScoreRow(_ns(8), "t-ok", "", "goal_completion", 1.0, level="trace"),
                ScoreRow(_ns(8), "t-bad", "", "goal_completion", 0.0, level="trace"),
            ]
        )
        write_all_completed(store)
        yield db


def _panel(db: Database, title: str) -> list[tuple[Any, ...]]:
    [panel] = [p for p in panel_queries() if p.dashboard == "agents" and p.title == title]
    request = resolve_variables(db, "agents", NOW - timedelta(hours=1), NOW)
    request.min_interval_s = interval_for(panel.min_interval)
    return db.query(interpolate(panel.sql, request))[1]


def test_the_stats_give_the_figures_worked_out_by_hand(runs: Database) -> None:
    assert _panel(runs, "Runs") == [(2,)]  # the chat trace is no run
    assert _panel(runs, "Success rate") == [(0.5,)]
    assert _panel(runs, "Tool error rate") == [(1 / 3,)]
    assert _panel(runs, "Steps per run (mean)") == [(4.0,)]  # (2 + 2) and (3 + 1)
    [(cost,)] = _panel(runs, "Cost per run (mean)")
    assert cost == pytest.approx(0.05)  # 0.04 and 0.06
    slowest = {row[0]: row for row in _panel(runs, "Slowest tools")}
    assert set(slowest) == {"search", "fetch"}
    assert slowest["search"][1] == 2 and slowest["search"][-1] == 0.5


def test_run_scores_are_read_per_evaluator(runs: Database) -> None:
    rows = _panel(runs, "Run score trend per evaluator (online)")
    assert {row[1] for row in rows} == {"goal_completion"}
    assert sum(row[2] for row in rows) / len(rows) == pytest.approx(0.5)
