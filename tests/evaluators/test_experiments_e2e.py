"""Experiments end to end: the real openai client against the fake model (prompt B scripted to
be better), `assay eval run` as CI runs it, a real collector on embedded storage.

Checked: the stored experiments, traces (the task's LLM spans inside each item's trace) and
scores; the comparison's numbers against a computation written out here from the stored
outputs; the CI gate's exit codes; promoting a stored call into a dataset."""

from __future__ import annotations

import itertools
import random
import statistics
import uuid
from collections.abc import Iterator

import httpx
import pytest
from click.testing import CliRunner

from assay.collector.cli import main
from assay.collector.demo.fake_openai import FakeOpenAI
from assay.collector.demo.quickstart import CAPITALS, PROMPT_B, quickstart_fake
from assay.evaluators import Dataset, compare
from assay.instrumentation import semconv as sc
from tests.conftest import RunningCollector, free_port
from tests.evaluators import gate_runs
from tests.evaluators.gate_runs import GateRun

SUFFIX = uuid.uuid4().hex[:8]
NAME_A = f"capitals-a-{SUFFIX}"
NAME_B = f"capitals-b-{SUFFIX}"
DATASET = f"capitals-{SUFFIX}"


def run_gate(
    collector: RunningCollector, fake: FakeOpenAI, prompt: str, name: str, *args: str, **env: str
) -> GateRun:
    return gate_runs.run_gate(collector, fake, prompt, name, *args, dataset=DATASET, **env)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    server = quickstart_fake()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def runs(collector: RunningCollector, fake: FakeOpenAI) -> dict[str, GateRun]:
    """Prompt A gated on a threshold it meets, prompt A on one it misses, then prompt B gated
    against A."""
    first = run_gate(collector, fake, "a", NAME_A, "--fail-under", "contains=0.5")
    missed = run_gate(collector, fake, "a", f"{NAME_A}-missed", "--fail-under", "exact_match=0.5")
    second = run_gate(
        collector,
        fake,
        "b",
        NAME_B,
        "--fail-under",
        "exact_match=0.8",
        "--fail-under",
        "contains.pass_rate=0.8",
        "--baseline",
        NAME_A,
    )
    return {"a": first, "missed": missed, "b": second}


def experiment_row(collector: RunningCollector, name: str) -> dict[str, object]:
    rows = collector.query(
        "SELECT experiment_id, status, dataset_name, dataset_version, evaluators, params, "
        f"summary, item_count, ended_at, verdict FROM experiments FINAL WHERE name = '{name}'"
    )
    assert len(rows) == 1, rows
    return rows[0]


def test_the_gate_fails_a_missed_threshold_and_passes_the_better_prompt(
    runs: dict[str, GateRun],
) -> None:
    assert runs["a"].code == 0, runs["a"].stderr
    assert runs["missed"].code == 1, runs["missed"].stderr
    assert "exact_match mean 0.000 < 0.5" in runs["missed"].stderr
    assert runs["b"].code == 0, runs["b"].stderr + runs["b"].stdout
    assert "PASS" in runs["b"].stderr
    assert "better" in runs["b"].stdout  # the comparison with the baseline is printed


def test_the_gate_fails_a_drop_beyond_the_tolerance_or_a_significant_one(
    runs: dict[str, GateRun], collector: RunningCollector, fake: FakeOpenAI
) -> None:
    # Prompt A against B: exact match falls 0.9 → 0.0, containment 0.9 → 0.6.
    again = run_gate(
        collector, fake, "a", f"{NAME_A}-again", "--baseline", NAME_B, "--max-drop", "contains=0.5"
    )
    assert again.code == 1, again.stderr
    assert (
        f"exact_match mean dropped by 0.900 against {NAME_B} (0.900 → 0.000), more than the "
        "tolerance 0.05" in again.stderr
    )
    assert "contains" not in again.stderr.split("FAIL", 1)[1]  # 0.3 is within its 0.5
    # A tolerance that lets the drop through still fails it on significance: 10 items reach
    # p < 0.05, and nine of them fell.
    lenient = run_gate(
        collector,
        fake,
        "a",
        f"{NAME_A}-lenient",
        "--baseline",
        NAME_B,
        "--max-drop",
        "exact_match=1",
        "--max-drop",
        "contains=1",
    )
    assert lenient.code == 1, lenient.stderr
    assert f"exact_match mean is significantly worse than {NAME_B}: -0.900" in lenient.stderr
    assert "p=0.00391 < 0.05" in lenient.stderr


def test_the_gate_exits_2_when_it_cannot_judge(
    runs: dict[str, GateRun], collector: RunningCollector, fake: FakeOpenAI
) -> None:
    crashed = run_gate(collector, fake, "a", f"{NAME_A}-crash", CAPITALS_CRASH="1")
    assert crashed.code == 2 and "the experiment file is broken" in crashed.stderr
    unknown = run_gate(collector, fake, "b", f"{NAME_B}-x", "--baseline", "no-such-experiment")
    assert unknown.code == 2 and "--baseline no-such-experiment: no run" in unknown.stderr
    typo = run_gate(collector, fake, "b", f"{NAME_B}-y", "--fail-under", "exact=0.5")
    assert (
        typo.code == 2 and "--fail-under exact: " in typo.stderr and "does not run" in typo.stderr
    )
    drop_typo = run_gate(collector, fake, "b", f"{NAME_B}-v", "--max-drop", "contain=0.1")
    assert drop_typo.code == 2 and "--max-drop contain" in drop_typo.stderr
    # Refused before any item ran: nothing was recorded, no LLM call was made.
    for name in (f"{NAME_B}-x", f"{NAME_B}-y", f"{NAME_B}-v"):
        assert collector.query(f"SELECT count() AS n FROM experiments WHERE name = '{name}'") == [
            {"n": 0}
        ]
    malformed = run_gate(collector, fake, "b", f"{NAME_B}-z", "--fail-under", "exact_match")
    assert malformed.code == 2 and "EVALUATOR=0.8" in malformed.stderr
    nowhere = run_gate(
        collector, fake, "b", f"{NAME_B}-w", "--url", f"http://127.0.0.1:{free_port()}"
    )
    assert nowhere.code == 2 and "no collector answers" in nowhere.stderr


def test_runs_are_stored_with_their_metadata(
    runs: dict[str, GateRun], collector: RunningCollector
) -> None:
    a = experiment_row(collector, NAME_A)
    b = experiment_row(collector, NAME_B)
    assert (a["verdict"], b["verdict"]) == ("passed", "passed")
    assert experiment_row(collector, f"{NAME_A}-missed")["verdict"] == "failed"
    version = Dataset(DATASET, CAPITALS).version
    for row in (a, b):
        assert row["status"] == "completed" and row["item_count"] == len(CAPITALS)
        assert (row["dataset_name"], row["dataset_version"]) == (DATASET, version)
        assert set(row["evaluators"]) == {"exact_match", "contains"}  # type: ignore[arg-type]
        assert row["ended_at"] is not None
    assert '"prompt": "You are a geography expert.' in str(b["params"])
    stored = collector.query(
        f"SELECT count() AS n FROM dataset_items FINAL WHERE dataset_name = '{DATASET}' "
        f"AND dataset_version = '{version}'"
    )
    assert stored[0]["n"] == len(CAPITALS)


def test_each_item_is_one_trace_with_the_task_llm_call_inside(
    runs: dict[str, GateRun], collector: RunningCollector
) -> None:
    experiment_id = experiment_row(collector, NAME_B)["experiment_id"]
    items = collector.query(
        "SELECT item_id, trace_id, span_id, cost_usd, input_tokens, output "
        f"FROM experiment_items FINAL WHERE experiment_id = '{experiment_id}'"
    )
    assert len(items) == len(CAPITALS)
    roots = collector.wait_for_rows(
        "SELECT TraceId, SpanId, SpanAttributes FROM otel_traces "
        f"WHERE SpanAttributes['{sc.EXPERIMENT_ID}'] = '{experiment_id}' "
        f"AND SpanName = 'experiment {NAME_B}'",
        len(CAPITALS),
    )
    calls = collector.wait_for_rows(
        "SELECT trace_id, parent_span_id, dataset_item_id, cost_usd, input_tokens, "
        f"prompt_name FROM llm_calls WHERE experiment_id = '{experiment_id}'",
        len(CAPITALS),
    )
    by_trace = {root["TraceId"]: root for root in roots}
    assert len(by_trace) == len(CAPITALS)  # one trace per item
    for call in calls:
        root = by_trace[call["trace_id"]]
        assert call["parent_span_id"] == root["SpanId"]  # the LLM call nests in the item span
        assert root["SpanAttributes"][sc.DATASET_ITEM_ID] == call["dataset_item_id"]
    for item in items:
        root = by_trace[item["trace_id"]]
        assert root["SpanId"] == item["span_id"]
        call = next(c for c in calls if c["trace_id"] == item["trace_id"])
        # The usage the run tallied from its spans is what the collector computed from them.
        assert item["cost_usd"] == pytest.approx(call["cost_usd"])
        assert item["input_tokens"] == call["input_tokens"]
    scores = collector.query(
        "SELECT trace_id, span_id, name, dataset_item_id, evaluator_version FROM scores FINAL "
        f"WHERE source = 'experiment' AND experiment_id = '{experiment_id}'"
    )
    assert len(scores) == 2 * len(CAPITALS)
    spans = {(i["trace_id"], i["span_id"], i["item_id"]) for i in items}
    assert {(s["trace_id"], s["span_id"], s["dataset_item_id"]) for s in scores} == spans


def scored_outputs(collector: RunningCollector, name: str) -> dict[str, dict[str, float]]:
    """Per evaluator, item → score, computed here from the stored outputs and expectations."""
    rows = collector.query(
        "SELECT e.item_id AS item, e.output AS output, d.expected AS expected "
        "FROM experiment_items AS e FINAL "
        "JOIN experiments AS x FINAL ON x.experiment_id = e.experiment_id "
        "JOIN dataset_items AS d FINAL ON d.dataset_name = x.dataset_name "
        "AND d.dataset_version = x.dataset_version AND d.item_id = e.item_id "
        f"WHERE x.name = '{name}'"
    )
    assert len(rows) == len(CAPITALS)
    exact, contained = {}, {}
    for row in rows:
        expected = row["expected"].strip('"')  # stored as JSON text
        exact[row["item"]] = float(row["output"].strip() == expected)
        contained[row["item"]] = float(expected.lower() in row["output"].lower())
    return {"exact_match": exact, "contains": contained}


def test_the_comparison_matches_an_independent_computation(
    runs: dict[str, GateRun], collector: RunningCollector
) -> None:
    comparison = compare(NAME_A, NAME_B, url=collector.http_url)
    a, b = scored_outputs(collector, NAME_A), scored_outputs(collector, NAME_B)
    for name in ("exact_match", "contains"):
        result = comparison.evaluators[name]
        diffs = {item: b[name][item] - a[name][item] for item in a[name]}
        assert result.n == len(diffs)
        assert result.mean_a == pytest.approx(statistics.fmean(a[name].values()))
        assert result.mean_b == pytest.approx(statistics.fmean(b[name].values()))
        assert result.delta == pytest.approx(statistics.fmean(diffs.values()))
        assert set(result.improved) == {i for i, d in diffs.items() if d > 0}
        assert set(result.regressed) == {i for i, d in diffs.items() if d < 0}
        assert set(result.unchanged) == {i for i, d in diffs.items() if d == 0}
        nonzero = [d for d in diffs.values() if d]
        flips = list(itertools.product((1, -1), repeat=len(nonzero)))
        extreme = sum(
            abs(sum(s * d for s, d in zip(signs, nonzero, strict=True))) >= abs(sum(nonzero))
            for signs in flips
        )
        assert result.p_value == pytest.approx(extreme / len(flips))
        rng = random.Random(11)
        values = list(diffs.values())
        means = sorted(statistics.fmean(rng.choices(values, k=len(values))) for _ in range(20000))
        assert result.ci is not None
        assert result.ci[0] == pytest.approx(means[500], abs=0.051)
        assert result.ci[1] == pytest.approx(means[19499], abs=0.051)
    # Prompt B is measurably better on exact match; one item regressed on containment.
    assert comparison.evaluators["exact_match"].verdict() == "better"
    canada = Dataset(DATASET, CAPITALS)[3]
    assert comparison.evaluators["contains"].regressed == (canada.id,)
    change = next(c for c in comparison.changes if c.item_id == canada.id)
    assert "Ottawa" in change.output_a and change.output_b == "Toronto"


def test_the_cli_lists_shows_and_compares(
    runs: dict[str, GateRun], collector: RunningCollector
) -> None:
    runner = CliRunner(env={"COLUMNS": "200"})
    url = ["--url", collector.http_url]
    listed = runner.invoke(main, ["experiments", "list", "--name", NAME_B, *url])
    assert listed.exit_code == 0, listed.output
    assert NAME_B in listed.output and "exact_match=0.900" in listed.output
    shown = runner.invoke(main, ["experiments", "show", NAME_B, *url])
    assert shown.exit_code == 0, shown.output
    assert "Toronto" in shown.output and PROMPT_B[:20] in shown.output
    compared = runner.invoke(main, ["experiments", "compare", NAME_A, NAME_B, *url])
    assert compared.exit_code == 0, compared.output
    assert "Changed items" in compared.output and "better" in compared.output
    missing = runner.invoke(main, ["experiments", "show", "no-such-run", *url])
    assert missing.exit_code == 2 and "no experiment" in missing.output


def test_a_stored_call_is_promoted_into_a_dataset(
    runs: dict[str, GateRun], collector: RunningCollector
) -> None:
    experiment_id = experiment_row(collector, NAME_B)["experiment_id"]
    calls = collector.wait_for_rows(
        "SELECT span_id, trace_id FROM llm_calls "
        f"WHERE experiment_id = '{experiment_id}' ORDER BY span_id LIMIT 2",
        2,
    )
    name = f"promoted-{SUFFIX}"
    endpoint = f"{collector.http_url}/api/datasets/{name}/items"
    created = httpx.post(endpoint, json={"span_id": calls[0]["span_id"]})
    assert created.status_code == 201, created.text
    item = created.json()
    assert item["dataset"] == name and item["source_span_id"] == calls[0]["span_id"]
    assert item["source_trace_id"] == calls[0]["trace_id"]
    assert [m["role"] for m in item["input"]] == ["user"]
    assert item["input"][0]["content"].startswith("What is the capital of")
    assert item["metadata"]["system_prompt"] == PROMPT_B
    assert item["expected"]  # the call's answer
    overridden = httpx.post(endpoint, json={"span_id": calls[0]["span_id"], "expected": "X"})
    assert overridden.status_code == 201
    assert overridden.json()["id"] == item["id"] and overridden.json()["expected"] == "X"
    second = httpx.post(endpoint, json={"span_id": calls[1]["span_id"]}).json()
    pulled = Dataset.pull(name, url=collector.http_url)
    assert pulled.version == second["version"] != overridden.json()["version"]
    assert [i.id for i in pulled] == [item["id"], second["id"]]
    assert pulled[item["id"]].expected == "X"
    unknown = httpx.post(endpoint, json={"span_id": "0" * 16})
    assert unknown.status_code == 404 and "no LLM call" in unknown.json()["error"]
    bad = httpx.post(endpoint, json={"span": "x"})
    assert bad.status_code == 400 and "span_id" in bad.json()["error"]
