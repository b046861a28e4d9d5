"""The dashboards: generated from code; every query proven on the real engine over seeded data."""

from __future__ import annotations

import math
import re
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest

from assay.collector.grafana.files import render_files
from assay.collector.grafana.macros import QueryRequest, interpolate, interval_for
from assay.collector.grafana.query import DATASOURCE_UID, PLUGIN_ID
from assay.collector.grafana.sql import CALL_VARIABLES
from assay.collector.normalize.traces import normalize_traces
from assay.collector.schema import LlmCallRow, column_names, to_columns
from assay.collector.store.embedded import EmbeddedStore
from assay.instrumentation import semconv as sc
from tests.collector.otlp_builders import make_request, make_span
from tests.grafana.panel_queries import (
    ROOT,
    PanelQuery,
    dashboards,
    panel_queries,
    resolve_variables,
    switches,
    variable_queries,
)
from tests.grafana.seed import (
    AGENT_SERVICES,
    AGENTS,
    COLLECTORS,
    RUN_EVALUATORS,
    SERVICES,
    Seeded,
    seed,
    seed_agent_runs,
    seed_collector_stats,
)

PANELS = list(panel_queries())
VARIABLES = list(variable_queries())
RANGES = {"24h": timedelta(hours=24), "7d": timedelta(days=7)}
DASHBOARDS = ["llm-monitoring", "evaluations", "experiments", "agents", "collectors"]
# Variables that pick one experiment each; only the comparison panels use them.
EXPERIMENT_CHOICES = {"experiment_a", "experiment_b"}
# Panels of rare events, and where the seeded traffic is sure to have rows for them: rate limits
# (1 call in 100) under "All"; a prompt's two newest versions with enough scores each over the
# whole week only (a day holds a version and its canary, with too few scores).
RARE = {
    "llm-monitoring: Rate-limited calls by provider": {("all", "24h"), ("all", "7d")},
    "evaluations: Pass rate: newest prompt version vs the one before": {("all", "7d")},
}


def test_checked_in_files_are_what_the_generator_writes() -> None:
    for relative, text in render_files().items():
        path = ROOT / "grafana" / relative
        assert path.exists(), f"{relative} is missing: run python -m assay.collector.grafana.files"
        assert path.read_text(encoding="utf-8") == text, (
            f"grafana/{relative} differs from the generator: run "
            "`python -m assay.collector.grafana.files` and commit the result"
        )


def test_five_dashboards_every_panel_on_the_assay_datasource() -> None:
    models = dashboards()
    assert set(models) == set(DASHBOARDS)
    for model in models.values():
        for panel in (p for p in model["panels"] if p["type"] != "row"):
            assert panel["datasource"] == {"type": PLUGIN_ID, "uid": DATASOURCE_UID}
            assert panel["targets"], panel["title"]
    assert len({m["uid"] for m in models.values()}) == len(DASHBOARDS)


def _filter_variables(dashboard: str) -> set[str]:
    model = dashboards()[dashboard]
    return {v["name"] for v in model["templating"]["list"] if v["type"] in ("query", "custom")}


@pytest.mark.parametrize("panel", PANELS, ids=lambda p: p.id)
def test_every_panel_filters_by_the_dashboard_variables(panel: PanelQuery) -> None:
    wanted = _filter_variables(panel.dashboard) - EXPERIMENT_CHOICES
    if panel.title.startswith("Human feedback"):
        wanted -= {"evaluator"}  # people's 👍/👎 come from no evaluator
    if panel.title == "Since the store last took a write":
        wanted -= {"instance"}  # the store's figure: any collector's write counts
    if panel.title.startswith("Pass rate: newest"):
        wanted -= {"prompt_version"}  # it compares the versions
    if "${experiment_a" in panel.sql:
        # Two chosen experiments: the call variables narrowed the experiments offered.
        wanted -= {v.name for v in CALL_VARIABLES}
    used = set(re.findall(r"\$\{?(\w+)", panel.sql))
    assert wanted <= used, f"{panel.id} ignores {wanted - used}"
    if "${experiment_a" not in panel.sql:  # chosen experiments are compared whenever they ran
        assert re.search(r"\$__(timeFilter|fromTime|toTime)\b", panel.sql), panel.id


@pytest.fixture(scope="module")
def seeded(embedded_store: EmbeddedStore) -> Seeded:
    end = datetime.now(timezone.utc).replace(microsecond=0)
    seed_collector_stats(embedded_store, end, hours=24 * 7)
    seed_agent_runs(embedded_store, 5_000, end, hours=24 * 7)
    return seed(embedded_store, 50_000, end, hours=24 * 7)


def _request(
    store: EmbeddedStore, seeded: Seeded, span: timedelta, dashboard: str, pick: dict[str, Any]
) -> QueryRequest:
    return resolve_variables(store, dashboard, seeded.end - span, seeded.end, pick)


def _a_graded_call(store: EmbeddedStore, where: str) -> dict[str, Any]:
    names, rows = store.query(
        "SELECT service_name AS service, model, provider, prompt_name, prompt_version "
        f"FROM assay.llm_calls WHERE {where} ORDER BY timestamp DESC LIMIT 1"
    )
    return dict(zip(names, rows[0], strict=True))


def _selections(store: EmbeddedStore, dashboard: str) -> dict[str, dict[str, Any]]:
    """All; one value of each variable (a call that was graded, so every panel has data); and
    several values of each (multi-value)."""
    if dashboard == "collectors":
        return {
            "all": {},
            "one": {"instance": COLLECTORS[0]},
            "several": {"instance": list(COLLECTORS)},
        }
    if dashboard == "agents":
        return {
            "all": {},
            "one": {"service": AGENT_SERVICES[0], "agent": AGENTS[0]},
            "several": {"service": list(AGENT_SERVICES), "agent": list(AGENTS[:2])},
        }
    # Calls of the seeded traffic only: other tests share the store.
    where = (
        "experiment_id LIKE 'exp-%' AND service_name = 'notebook'"
        if dashboard == "experiments"
        else "span_id IN (SELECT span_id FROM assay.scores WHERE source = 'human') "
        f"AND timestamp >= now() - INTERVAL 12 HOUR AND service_name IN {SERVICES!r}"
    )
    one = {**_a_graded_call(store, where), "evaluator": "relevance"}
    several = {name: [value] for name, value in one.items()}
    several["evaluator"] = ["relevance", "toxicity"]
    several["prompt_version"] = sorted({one["prompt_version"], "v1", "v2", "v3"})
    several["model"] = [one["model"], "gpt-4o" if one["model"] != "gpt-4o" else "gpt-4o-mini"]
    several["model"] = [m for m in several["model"] if m in _models(store)]
    return {"all": {}, "one": one, "several": several}


def _models(store: EmbeddedStore) -> set[str]:
    return {row[0] for row in store.query("SELECT DISTINCT model FROM assay.llm_calls")[1]}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _assert_shape(panel: PanelQuery, names: list[str], rows: list[tuple[Any, ...]]) -> None:
    assert rows, f"{panel.id} returned no rows"
    assert len(set(names)) == len(names), f"{panel.id}: duplicate column names {names}"
    if panel.panel_type == "timeseries":
        # A time column first, then numbers; strings become series labels.
        assert all(isinstance(r[0], (datetime, date)) for r in rows), f"{panel.id}: {names[0]}"
        kinds = [{type(r[i]) for r in rows if r[i] is not None} for i in range(1, len(names))]
        numeric = [k for k in kinds if k and all(issubclass(t, (int, float)) for t in k)]
        labels = [k for k in kinds if k == {str}]
        assert numeric, f"{panel.id} has no numeric column: {names}"
        assert len(numeric) + len(labels) == len(kinds), f"{panel.id}: {names} {kinds}"
        values = [r[i] for r in rows for i in range(1, len(names)) if _is_number(r[i])]
        assert any(not math.isnan(v) for v in values), f"{panel.id}: only NaN"
    elif panel.panel_type == "stat":
        assert len(rows) == 1, f"{panel.id} should give one row"
        assert all(_is_number(v) and not math.isnan(v) for v in rows[0]), (panel.id, rows)
    else:
        assert panel.panel_type == "table", panel.id
        assert all(len(r) == len(names) for r in rows)


@pytest.mark.parametrize("choice", ["all", "one", "several"])
@pytest.mark.parametrize("span", list(RANGES), ids=list(RANGES))
@pytest.mark.parametrize("dashboard", DASHBOARDS)
def test_every_panel_query_runs_and_returns_what_its_panel_needs(
    embedded_store: EmbeddedStore, seeded: Seeded, dashboard: str, span: str, choice: str
) -> None:
    pick = _selections(embedded_store, dashboard)[choice]
    request = _request(embedded_store, seeded, RANGES[span], dashboard, pick)
    for panel in (p for p in PANELS if p.dashboard == dashboard):
        request.min_interval_s = interval_for(panel.min_interval)
        sql = interpolate(panel.sql, request)
        names, rows = embedded_store.query(sql)
        if not rows and (choice, span) not in RARE.get(panel.id, {(choice, span)}):
            continue
        _assert_shape(panel, names, rows)


@pytest.mark.parametrize("dashboard", DASHBOARDS)
def test_every_variable_query_lists_values(
    embedded_store: EmbeddedStore, seeded: Seeded, dashboard: str
) -> None:
    # Variables resolve in order, each query seeing the ones before it ("All" here).
    request = _request(embedded_store, seeded, RANGES["24h"], dashboard, {})
    names = [v.name for v in VARIABLES if v.dashboard == dashboard]
    assert [name for name in request.variables if name not in switches(dashboard)] == names


def test_rollups_add_up_to_the_calls_they_summarize(
    embedded_store: EmbeddedStore, seeded: Seeded
) -> None:
    def one(sql: str) -> tuple[Any, ...]:
        return embedded_store.query(sql)[1][0]

    # The seeded traffic only, from a whole day on (other tests share the store).
    day = f"toDate('{seeded.start:%Y-%m-%d}')"
    ours = f"service_name IN {SERVICES!r}"
    calls_where = f"WHERE {ours} AND toDate(timestamp) >= {day}"
    cost = "round(sum(ifNull(cost_usd, 0)), 4)"  # float sums differ in the last digits
    raw = f"count(), countIf(status = 'error'), sum(ifNull(input_tokens, 0)), {cost}"
    summed = "sum(calls), sum(errors), sum(input_tokens), round(sum(cost_usd), 4)"
    calls = one(f"SELECT {raw} FROM assay.llm_calls {calls_where}")
    assert calls[0] >= seeded.calls
    for rollup in ("llm_calls_1m", "llm_calls_1h"):
        assert one(f"SELECT {summed} FROM assay.{rollup} WHERE {ours} AND minute >= {day}") == (
            calls
        ), rollup
    assert one(f"SELECT {summed} FROM assay.llm_users_1d WHERE {ours} AND day >= {day}") == calls
    sessions = "sum(calls), sum(errors), round(sum(cost_usd), 4), uniqExact(session_id)"
    assert one(
        f"SELECT {sessions} FROM assay.llm_sessions_1d "
        f"WHERE hasAny(services, {list(SERVICES)!r}) AND day >= {day}"
    ) == one(
        f"SELECT count(), countIf(status = 'error'), {cost}, uniqExact(session_id) "
        f"FROM assay.llm_calls {calls_where}"
    )
    assert one(f"SELECT count() FROM assay.llm_errors {calls_where}") == one(
        f"SELECT countIf(status = 'error') FROM assay.llm_calls {calls_where}"
    )
    # Every score carries the dimensions of the call it grades.
    graded = f"WHERE span_id IN (SELECT span_id FROM assay.llm_calls {calls_where})"
    assert one(f"SELECT count() FROM assay.call_scores FINAL {graded}") == one(
        f"SELECT count() FROM assay.scores FINAL {graded}"
    )
    assert one(
        "SELECT count() FROM assay.call_scores AS s FINAL "
        "INNER JOIN assay.llm_calls AS c ON c.span_id = s.span_id "
        "WHERE (s.service_name, s.model, s.prompt_version) != (c.service_name, c.model, "
        "c.prompt_version)"
    ) == (0,)
    assert one(f"SELECT countIf(service_name = '') FROM assay.call_scores {graded}") == (0,)


def test_selecting_a_service_narrows_the_monitoring_totals(
    embedded_store: EmbeddedStore, seeded: Seeded
) -> None:
    [calls] = [p for p in PANELS if p.dashboard == "llm-monitoring" and p.title == "Calls"]
    results = {}
    for choice in ("all", "one"):
        pick = _selections(embedded_store, "llm-monitoring")[choice]
        request = _request(embedded_store, seeded, RANGES["24h"], "llm-monitoring", pick)
        results[choice] = embedded_store.query(interpolate(calls.sql, request))[1][0][0]
        if choice == "one":
            start, end = int(request.start.timestamp()), int(request.end.timestamp())
            conditions = " AND ".join(
                f"{column} = '{pick[name]}'"
                for name, column in (
                    ("service", "service_name"),
                    ("model", "model"),
                    ("provider", "provider"),
                    ("prompt_name", "prompt_name"),
                    ("prompt_version", "prompt_version"),
                )
            )
            _, [[expected]] = embedded_store.query(
                "SELECT count() FROM assay.llm_calls WHERE timestamp >= toDateTime({s:Int64}) "
                f"AND timestamp <= toDateTime({{e:Int64}}) AND {conditions}",
                parameters={"s": start, "e": end},
            )
            # The per-minute rollup counts whole minutes at the range's two edges.
            assert abs(results[choice] - expected) <= max(2, expected // 100), (
                results,
                expected,
            )
    assert 0 < results["one"] < results["all"]


def _units(panel: dict[str, Any]) -> dict[str, str]:
    """Field name → unit given by the panel's overrides ("" for its default)."""
    out = {"": panel.get("fieldConfig", {}).get("defaults", {}).get("unit", "")}
    for override in panel.get("fieldConfig", {}).get("overrides", []):
        for prop in override["properties"]:
            if prop["id"] == "unit" and override["matcher"]["id"] == "byName":
                out[override["matcher"]["options"]] = prop["value"]
    return out


def test_every_panel_says_what_it_shows_and_in_what_unit() -> None:
    for name, model in dashboards().items():
        for panel in (p for p in model["panels"] if p["type"] != "row"):
            where = f"{name}: {panel['title']}"
            assert len(panel.get("description", "")) > 20, f"{where} has no description"
            if panel["type"] != "table":
                assert _units(panel)[""], f"{where} has no unit"


def test_every_numeric_table_column_has_a_unit(
    embedded_store: EmbeddedStore, seeded: Seeded
) -> None:
    models = dashboards()
    for dashboard in DASHBOARDS:
        request = _request(embedded_store, seeded, RANGES["7d"], dashboard, {})
        panels = {p["title"]: p for p in models[dashboard]["panels"] if p["type"] == "table"}
        for query in (q for q in PANELS if q.dashboard == dashboard and q.title in panels):
            names, rows = embedded_store.query(interpolate(query.sql, request))
            units = _units(panels[query.title])
            numeric = {
                name for i, name in enumerate(names) if any(_is_number(row[i]) for row in rows)
            }
            assert numeric <= set(units), f"{query.id}: no unit for {numeric - set(units)}"


def _store_call(
    store: EmbeddedStore, at: datetime, trace_id: str, span_id: str, **columns: object
) -> None:
    """One checkout call of gpt-4o (prompt checkout-answer v1) at `at`, for scores to join;
    `columns` set others."""
    call: dict[str, object] = {"timestamp": at, "trace_id": trace_id, "span_id": span_id}
    call |= {"service_name": "checkout", "operation": "chat", "provider": "openai"}
    call |= {"model": "gpt-4o", "request_model": "gpt-4o", "response_model": "gpt-4o"}
    call |= {"duration_ms": 1.0, "prompt_name": "checkout-answer", "prompt_version": "v1"}
    call |= columns
    store.insert("llm_calls", [[v] for v in call.values()], list(call))


def test_a_lower_is_better_score_is_read_the_right_way_up(
    embedded_store: EmbeddedStore, seeded: Seeded
) -> None:
    """A stored score of an evaluator that scored the bad outcome high (direction
    lower_is_better) counts as 1 - value in every average of the Evaluations dashboard."""
    at = seeded.end - timedelta(minutes=30)
    _store_call(embedded_store, at, "t-lib", "s-lib")
    score = {"timestamp": at, "trace_id": "t-lib", "span_id": "s-lib", "name": "old_toxicity"}
    score |= {"value": 0.2, "passed": True, "source": "online", "direction": "lower_is_better"}
    embedded_store.insert("scores", [[v] for v in score.values()], list(score))
    request = _request(
        embedded_store, seeded, RANGES["24h"], "evaluations", {"evaluator": "old_toxicity"}
    )
    [trend] = [p for p in PANELS if p.title == "Score trend per evaluator (online)"]
    request.min_interval_s = interval_for(trend.min_interval)
    _, rows = embedded_store.query(interpolate(trend.sql, request))
    assert [(name, round(value, 6)) for _, name, value in rows] == [("old_toxicity", 0.8)]


def test_the_evaluations_dashboard_reads_scores_of_calls_not_of_runs(
    embedded_store: EmbeddedStore, seeded: Seeded
) -> None:
    [panel] = [p for p in PANELS if p.id == "evaluations: Score trend per evaluator (online)"]
    request = _request(embedded_store, seeded, RANGES["7d"], "evaluations", {})
    request.min_interval_s = interval_for(panel.min_interval)
    _, rows = embedded_store.query(interpolate(panel.sql, request))
    evaluators = {row[1] for row in rows}
    assert evaluators and not evaluators & set(RUN_EVALUATORS), evaluators


def test_an_evaluator_that_failed_is_no_score_in_any_average(
    embedded_store: EmbeddedStore, seeded: Seeded
) -> None:
    """An error score (value 0, `error` set: a judge that timed out) is a failure, never a
    value: the averages and the worst calls leave it out, whichever the score's direction."""
    at = seeded.end - timedelta(minutes=20)
    for span, experiment_id in (("s-err-1", ""), ("s-err-2", ""), ("s-err-3", "x-err")):
        _store_call(embedded_store, at, "t-err", span, experiment_id=experiment_id)
    experiment = {"experiment_id": "x-err", "name": "flaky", "dataset_name": "golden"}
    experiment |= {"started_at": at, "status": "completed", "item_count": 2}
    embedded_store.insert("experiments", [[v] for v in experiment.values()], list(experiment))
    up, down = "higher_is_better", "lower_is_better"
    online, ran = ("online", "", ""), ("experiment", "x-err")
    rows = [  # span, name, value, passed, error, direction, source, experiment, item
        ("s-err-1", "flaky_judge", 0.9, True, "", up, *online),
        ("s-err-2", "flaky_judge", 0.0, None, "TimeoutError", up, *online),
        ("s-err-1", "flaky_detector", 0.2, True, "", down, *online),
        ("s-err-2", "flaky_detector", 0.0, None, "ValueError", down, *online),
        ("s-err-3", "flaky_judge", 1.0, True, "", up, *ran, "i1"),
        ("s-err-1", "flaky_judge", 0.0, None, "TimeoutError", up, *ran, "i2"),
    ]
    names = ["span_id", "name", "value", "passed", "error", "direction", "source"]
    names += ["experiment_id", "dataset_item_id"]
    for row in rows:
        values = [[at], ["t-err"], *([v] for v in row)]
        embedded_store.insert("scores", values, ["timestamp", "trace_id", *names])

    def run(dashboard: str, title: str, pick: dict[str, Any]) -> list[tuple[Any, ...]]:
        [panel] = [p for p in PANELS if p.dashboard == dashboard and p.title == title]
        request = _request(embedded_store, seeded, RANGES["24h"], dashboard, pick)
        request.min_interval_s = interval_for(panel.min_interval)
        return embedded_store.query(interpolate(panel.sql, request))[1]

    flaky = {"evaluator": ["flaky_judge", "flaky_detector"]}
    trend = run("evaluations", "Score trend per evaluator (online)", flaky)
    assert sorted((name, round(value, 6)) for _, name, value in trend) == [
        ("flaky_detector", 0.8),
        ("flaky_judge", 0.9),
    ]
    worst = run("evaluations", "Worst-scoring recent calls", flaky)
    assert sorted((row[4], round(row[5], 6)) for row in worst) == [
        ("flaky_detector", 0.8),
        ("flaky_judge", 0.9),
    ]
    means = run("experiments", "Per-evaluator means by experiment", {"evaluator": "flaky_judge"})
    assert [(row[2], row[4]) for row in means if row[2] == "x-err"] == [("x-err", 1.0)]


def test_a_tie_between_people_is_no_verdict_for_the_agreement_panel(
    embedded_store: EmbeddedStore, seeded: Seeded
) -> None:
    """One 👍 and one 👎 on a call is no human verdict (as on the UI's agreement page): the
    panel leaves the call out rather than count it as a 👍 the judge agreed with."""
    at = seeded.end - timedelta(minutes=25)
    _store_call(embedded_store, at, "t-tie", "s-tie")
    names = ["timestamp", "trace_id", "span_id", "name", "value", "passed", "source", "author"]
    for row in (
        ("tie_judge", 1.0, True, "online", ""),
        ("feedback", 1.0, True, "human", "ada"),
        ("feedback", 0.0, False, "human", "bob"),
    ):
        values = [[at], ["t-tie"], ["s-tie"], *([v] for v in row)]
        embedded_store.insert("scores", values, names)
    [panel] = [p for p in PANELS if p.title == "Evaluators vs people (👍 / 👎)"]
    request = _request(embedded_store, seeded, RANGES["24h"], "evaluations", {})
    names, rows = embedded_store.query(interpolate(panel.sql, request))
    assert not [row for row in rows if row[names.index("evaluator")] == "tie_judge"]


def test_provisions_help_counts_the_dashboards_it_pushes() -> None:
    """`assay grafana provision --help` said 'the three dashboards' while it pushed five."""
    from click.testing import CliRunner

    from assay.collector.cli_grafana import grafana
    from assay.collector.grafana.dashboards import render_dashboards

    shown = CliRunner().invoke(grafana, ["provision", "--help"]).output
    words = {3: "three", 4: "four", 5: "five", 6: "six", 7: "seven"}
    assert f"the {words[len(render_dashboards())]} dashboards" in " ".join(shown.split())


def test_a_model_no_call_of_which_was_priced_costs_nothing_known_not_zero(
    embedded_store: EmbeddedStore, seeded: Seeded
) -> None:
    """A model missing from the price table (cost NULL) has no cost in the cost-by-dimension
    panels: no $0 bar beside the priced models (the rollups sum its NULL cost as 0)."""
    at = seeded.end - timedelta(minutes=40)
    for span in ("s-unpriced-1", "s-unpriced-2"):
        _store_call(
            embedded_store,
            at,
            "t-unpriced",
            span,
            service_name="unpriced-svc",
            provider="in-house",
            model="in-house-llm",
            cost_source="unpriced_model",
        )
    pick = {"model": ["in-house-llm", "gpt-4o"]}
    for title, unpriced, priced in (
        ("Cost per hour by model", "in-house-llm", "gpt-4o"),
        ("Cost per hour by provider", "in-house", "openai"),
        ("Cost per day by service", "unpriced-svc", "checkout"),
    ):
        [panel] = [p for p in PANELS if p.id == f"llm-monitoring: {title}"]
        request = _request(embedded_store, seeded, RANGES["24h"], "llm-monitoring", pick)
        request.min_interval_s = interval_for(panel.min_interval)
        _, rows = embedded_store.query(interpolate(panel.sql, request))
        costs: dict[str, list[Any]] = {}
        for row in rows:
            costs.setdefault(row[1], []).append(row[2])
        assert set(costs.get(unpriced, [])) <= {None}, (title, costs[unpriced])
        assert max(costs[priced]) > 0, (title, costs[priced])


def test_a_user_or_session_no_call_of_which_was_priced_costs_nothing_known_not_zero(
    embedded_store: EmbeddedStore, seeded: Seeded
) -> None:
    """A user (a session) all of whose calls are on a model missing from the price table has no
    cost in the cost-by-user and cost-by-session panels, not $0 (the rollups sum a NULL cost as
    0, migration 019 counts the unpriced calls); one with a priced call shows that call's cost."""
    at = seeded.end - timedelta(minutes=40)
    unknown = {"service_name": "unpriced-users", "provider": "in-house", "model": "in-house-llm"}
    for span, user, cost in (
        ("s-uu-1", "u-unpriced", None),
        ("s-uu-2", "u-unpriced", None),
        ("s-up-1", "u-priced", None),
        ("s-up-2", "u-priced", 0.25),
    ):
        priced = {"model": "gpt-4o", "cost_source": "priced"} if cost else {}
        _store_call(
            embedded_store,
            at,
            "t-unpriced-users",
            span,
            **unknown | {"cost_source": "unpriced_model"} | priced,
            user_id=user,
            session_id=f"session-of-{user}",
            cost_usd=cost,
        )
    request = _request(
        embedded_store, seeded, RANGES["24h"], "llm-monitoring", {"service": "unpriced-users"}
    )
    for title, who, cost_column in (
        ("Cost per day by user (top 10)", 1, 2),
        ("Top users by cost", 0, 1),
        ("Top sessions by cost", 0, 2),
    ):
        [panel] = [p for p in PANELS if p.id == f"llm-monitoring: {title}"]
        request.min_interval_s = interval_for(panel.min_interval)
        _, rows = embedded_store.query(interpolate(panel.sql, request))
        costs = {row[who].removeprefix("session-of-"): row[cost_column] for row in rows}
        assert costs == {"u-unpriced": None, "u-priced": 0.25}, title


def test_a_user_or_session_whose_calls_could_not_be_priced_stays_in_the_top_tables(
    embedded_store: EmbeddedStore, seeded: Seeded
) -> None:
    """Twenty-one users with a priced call each, and one whose five calls are on a model without
    a price: ranked by cost alone, the unknown spender fell out of the top 20 (a NULL sorts
    last). They are listed after the priced ones, with their unpriced calls."""
    at = seeded.end - timedelta(minutes=40)
    service = {"service_name": "top-unpriced"}
    calls = [(f"u-priced-{i:02d}", 0.01 * (i + 1), "priced") for i in range(21)]
    calls += [("u-unknown", None, "unpriced_model")] * 5
    for n, (user, cost, source) in enumerate(calls):
        _store_call(
            embedded_store,
            at,
            "t-top-unpriced",
            f"s-top-{n}",
            **service,
            user_id=user,
            session_id=f"session-of-{user}",
            cost_usd=cost,
            cost_source=source,
        )
    request = _request(
        embedded_store, seeded, RANGES["24h"], "llm-monitoring", {"service": "top-unpriced"}
    )
    for title in ("Top users by cost", "Top sessions by cost"):
        [panel] = [p for p in PANELS if p.id == f"llm-monitoring: {title}"]
        names, rows = embedded_store.query(interpolate(panel.sql, request))
        listed = [dict(zip(names, row, strict=True)) for row in rows]
        who = [row["user_id"] for row in listed]
        assert who == [f"u-priced-{i:02d}" for i in range(20, 0, -1)] + ["u-unknown"], title
        assert (listed[-1]["cost_usd"], listed[-1]["unpriced"]) == (None, 5), title
        assert [row["unpriced"] for row in listed[:-1]] == [0] * 20, title


def test_a_prompt_version_no_call_of_which_was_priced_costs_nothing_known_not_zero(
    embedded_store: EmbeddedStore, seeded: Seeded
) -> None:
    """Its total and its cost per call read $0 beside the priced versions."""
    at = seeded.end - timedelta(minutes=40)
    for n in range(2):
        _store_call(
            embedded_store,
            at,
            "t-unpriced-prompt",
            f"s-unpriced-prompt-{n}",
            service_name="unpriced-prompt",
            prompt_version="v-unpriced",
            cost_source="unpriced_model",
        )
    request = _request(
        embedded_store, seeded, RANGES["24h"], "llm-monitoring", {"service": "unpriced-prompt"}
    )
    [panel] = [p for p in PANELS if p.id == "llm-monitoring: Cost by prompt version"]
    names, rows = embedded_store.query(interpolate(panel.sql, request))
    [row] = [dict(zip(names, row, strict=True)) for row in rows]
    assert (row["total_cost_usd"], row["cost_per_call"], row["unpriced"]) == (None, None, 2)
    [panel] = [p for p in PANELS if p.id == "llm-monitoring: Average cost per call"]
    assert embedded_store.query(interpolate(panel.sql, request))[1] == [(None,)]


def test_the_unpriced_stat_and_prompt_versions_say_how_many_unpriced_calls_failed(
    embedded_store: EmbeddedStore, seeded: Seeded
) -> None:
    """Three calls through the collector's normalizer: one priced, one on a model without a
    price, one that failed after reporting its input usage (an Anthropic stream cut by an
    `error` event). Two are unpriced, one of them failed, as the UI's calls page counts them
    (cost NULL, and of those status error); the panels that show unpriced calls say both."""
    service = "unpriced-failed"
    start = int((seeded.end - timedelta(minutes=40)).timestamp() * 1e9)
    base = {
        sc.OPERATION_NAME: sc.OP_CHAT,
        sc.PROVIDER_NAME: "anthropic",
        sc.PROMPT_NAME: "failing-answer",
        sc.PROMPT_VERSION: "v1",
        sc.USAGE_INPUT_TOKENS: 700,
    }
    spans = [
        make_span(attrs=base | {sc.REQUEST_MODEL: "claude-haiku-4-5", sc.USAGE_OUTPUT_TOKENS: 9}),
        make_span(attrs=base | {sc.REQUEST_MODEL: "in-house-llm", sc.USAGE_OUTPUT_TOKENS: 9}),
        make_span(
            attrs=base | {sc.REQUEST_MODEL: "claude-haiku-4-5", sc.ERROR_TYPE: "OverloadedError"},
            error=True,
        ),
    ]
    for n, span in enumerate(spans):
        span.start_time_unix_nano = start + n
        span.end_time_unix_nano = start + n + 1_000_000
        (row,) = normalize_traces(make_request(service, span)).llm_calls
        embedded_store.insert(LlmCallRow.table, to_columns([row]), column_names(LlmCallRow))
    _, truth = embedded_store.query(
        "SELECT countIf(cost_usd IS NULL), countIf(cost_usd IS NULL AND status = 'error')"
        f" FROM {embedded_store.database}.llm_calls WHERE service_name = '{service}'"
    )
    assert truth == [(2, 1)]  # the calls page's count (records/calls.py: call_totals)
    request = _request(
        embedded_store, seeded, RANGES["24h"], "llm-monitoring", {"service": service}
    )
    [stat] = [p for p in PANELS if p.id == "llm-monitoring: Unpriced calls"]
    names, rows = embedded_store.query(interpolate(stat.sql, request))
    assert [dict(zip(names, row, strict=True)) for row in rows] == [
        {"unpriced_calls": 2, "of_them_failed": 1}
    ]
    [panel] = [p for p in PANELS if p.id == "llm-monitoring: Cost by prompt version"]
    names, rows = embedded_store.query(interpolate(panel.sql, request))
    [row] = [dict(zip(names, row, strict=True)) for row in rows]
    assert (row["prompt_calls"], row["unpriced"], row["unpriced_failed"]) == (3, 2, 1)
    assert row["total_cost_usd"] > 0
