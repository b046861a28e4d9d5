"""Online evaluation: rules from assay.yaml pick stored calls; scores land in `scores`.

In-process against the session's embedded store (the queue, drops, failures, rule parsing),
and end to end: the real collector with `--config`, fed by the real demo traffic.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from assay.collector.demo.traffic import run_demo
from assay.collector.evaluation.config import EvaluationConfig, load_evaluation_config
from assay.collector.evaluation.online import CpuBudget, OnlineEvaluation
from assay.collector.evaluation.rules import compile_rules, sampled
from assay.collector.schema import LlmCallRow
from assay.collector.store.embedded import EmbeddedStore
from assay.evaluators import EvalInput, evaluator
from tests.conftest import own_database, start_collector

ANSWER = json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": '{"ok": 1}'}]}])


def call(service: str, **fields: Any) -> LlmCallRow:
    values: dict[str, Any] = {
        "timestamp": time.time_ns(),
        "trace_id": uuid.uuid4().hex,
        "span_id": uuid.uuid4().hex[:16],
        "parent_span_id": "",
        "service_name": service,
        "operation": "chat",
        "provider": "openai",
        "request_model": "gpt-4o-mini",
        "response_model": "gpt-4o-mini",
        "model": "gpt-4o-mini",
        "output_messages": ANSWER,
        "duration_ms": 120.0,
        **fields,
    }
    return LlmCallRow(**values)


def config(rules: list[dict[str, Any]], **options: Any) -> EvaluationConfig:
    # No look back for calls left unscored unless a test asks: the session store holds other
    # tests' calls.
    options.setdefault("call_lookback", 0)
    return EvaluationConfig.model_validate({"rules": rules, "flush_interval": 0.05, **options})


def scores_of(store: EmbeddedStore, service: str) -> list[dict[str, Any]]:
    columns, rows = store.query(
        f"SELECT s.name AS name, s.value AS value, s.passed AS passed, s.source AS source,"
        f" s.error AS error, s.span_id AS span_id, s.trace_id AS trace_id"
        f" FROM {store.database}.scores AS s FINAL WHERE s.span_id IN"
        f" (SELECT span_id FROM {store.database}.llm_calls WHERE service_name = {{s:String}})"
        " ORDER BY name",
        {"s": service},
    )
    return [dict(zip(columns, row, strict=True)) for row in rows]


@pytest.fixture
def running(embedded_store: EmbeddedStore) -> Iterator[list[OnlineEvaluation]]:
    """Evaluations started by a test, stopped (and their scores flushed) afterwards."""
    started: list[OnlineEvaluation] = []
    yield started
    for online in started:
        online.stop()


def start(
    store: EmbeddedStore, cfg: EvaluationConfig, running: list[OnlineEvaluation]
) -> OnlineEvaluation:
    online = OnlineEvaluation(cfg, store)
    online.start()
    running.append(online)
    return online


def store_calls(store: EmbeddedStore, calls: list[LlmCallRow]) -> None:
    from assay.collector.schema import column_names, to_columns

    store.insert(LlmCallRow.table, to_columns(calls), column_names(LlmCallRow))


def wait_until(predicate: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def test_matching_calls_are_scored_and_stored_online(
    embedded_store: EmbeddedStore, running: list[OnlineEvaluation]
) -> None:
    service = f"svc-{uuid.uuid4().hex[:8]}"
    cfg = config(
        [
            {
                # `pii` is the former name of `no_pii`: an old assay.yaml keeps working.
                "evaluators": ["json_valid", "pii", {"latency_budget": {"ms": 100}}],
                "where": {"service": service, "model": "gpt-4o-mini"},
            }
        ]
    )
    online = start(embedded_store, cfg, running)
    leaky = json.dumps([{"role": "assistant", "content": "mail me at ann@example.com"}])
    other_model = {"model": "gpt-4o", "request_model": "gpt-4o", "response_model": "gpt-4o"}
    calls = [call(service), call(service, output_messages=leaky), call(service, **other_model)]
    store_calls(embedded_store, calls)
    online.offer(calls)
    wait_until(lambda: len(scores_of(embedded_store, service)) == 6)

    by_span: dict[str, dict[str, Any]] = {}
    for score in scores_of(embedded_store, service):
        assert score["source"] == "online"
        by_span.setdefault(score["span_id"], {})[score["name"]] = score
    assert set(by_span) == {calls[0].span_id, calls[1].span_id}  # gpt-4o did not match
    assert by_span[calls[0].span_id]["json_valid"]["value"] == 1.0
    assert by_span[calls[1].span_id]["json_valid"]["value"] == 0.0
    assert (
        by_span[calls[0].span_id]["no_pii"]["value"],
        by_span[calls[0].span_id]["no_pii"]["passed"],
    ) == (1.0, True)
    assert (
        by_span[calls[1].span_id]["no_pii"]["value"],
        by_span[calls[1].span_id]["no_pii"]["passed"],
    ) == (0.0, False)
    # The options from the rule reached the preset: 120 ms against a 100 ms budget.
    assert by_span[calls[0].span_id]["latency_budget"]["passed"] is False
    assert by_span[calls[0].span_id]["latency_budget"]["value"] == pytest.approx(100 / 120)
    assert by_span[calls[0].span_id]["json_valid"]["trace_id"] == calls[0].trace_id
    assert online.snapshot()["evaluated"] == 6


def test_calls_without_an_answer_only_get_figure_evaluators(
    embedded_store: EmbeddedStore, running: list[OnlineEvaluation]
) -> None:
    service = f"svc-{uuid.uuid4().hex[:8]}"
    cfg = config([{"evaluators": ["json_valid", {"cost_budget": {"usd": 1.0}}]}])
    online = start(embedded_store, cfg, running)
    calls = [
        call(service, output_messages="", cost_usd=0.001),  # stored without content
        call(service, status="error", output_messages="", cost_usd=0.002),
    ]
    store_calls(embedded_store, calls)
    online.offer(calls)
    wait_until(lambda: len(scores_of(embedded_store, service)) == 2)
    time.sleep(0.3)  # nothing more arrives
    assert [s["name"] for s in scores_of(embedded_store, service)] == ["cost_budget"] * 2


def test_the_prompt_is_read_for_the_evaluators_that_ask_for_it(
    embedded_store: EmbeddedStore, running: list[OnlineEvaluation]
) -> None:
    # Only output readers: the prompt is not parsed. One evaluator reads it: parsed for it.
    prompt = json.dumps([{"role": "user", "content": "I am ann@example.com"}])
    scored = {}
    for include_input in (False, True):
        service = f"svc-{uuid.uuid4().hex[:8]}"
        rule = {"evaluators": ["json_valid", {"no_pii": {"include_input": include_input}}]}
        online = start(embedded_store, config([rule]), running)
        calls = [call(service, input_messages=prompt)]
        store_calls(embedded_store, calls)
        online.offer(calls)
        wait_until(lambda service=service: len(scores_of(embedded_store, service)) == 2)
        scored[include_input] = {s["name"]: s["value"] for s in scores_of(embedded_store, service)}
    assert scored == {
        False: {"json_valid": 1.0, "no_pii": 1.0},
        True: {"json_valid": 1.0, "no_pii": 0.0},
    }


def test_sampling_is_per_trace_and_near_the_rate() -> None:
    traces = [uuid.uuid4().hex for _ in range(2000)]
    picked = [t for t in traces if sampled(t, 0.25, salt=0)]
    assert 0.2 < len(picked) / len(traces) < 0.3
    # The same trace gets the same answer every time (all its calls are evaluated together).
    assert picked == [t for t in traces if sampled(t, 0.25, salt=0)]
    # Rules sample independently of each other.
    assert picked != [t for t in traces if sampled(t, 0.25, salt=1)]


def test_a_full_queue_drops_the_oldest_and_never_blocks(
    embedded_store: EmbeddedStore, running: list[OnlineEvaluation]
) -> None:
    gate = threading.Event()

    @evaluator(name=f"slow_{uuid.uuid4().hex[:6]}")
    def slow(data: EvalInput) -> float:
        gate.wait(10)
        return 1.0

    cfg = config([{"evaluators": [slow.name]}], queue_size=5, max_in_flight=1)
    online = start(embedded_store, cfg, running)
    service = f"svc-{uuid.uuid4().hex[:8]}"
    first = call(service)
    calls = [call(service) for _ in range(12)]
    store_calls(embedded_store, [first, *calls])
    online.offer([first])
    wait_until(lambda: online.depth() == 0)  # taken by the worker, which now waits on the gate
    began = time.monotonic()
    for one in calls:
        online.offer([one])
    assert time.monotonic() - began < 5  # generous: offering must not wait on evaluation
    stats = online.snapshot()
    assert stats["dropped"] == 7
    assert stats["queue_depth"] == 5
    gate.set()
    wait_until(lambda: online.snapshot()["evaluated"] == 6)
    # The newest five survived the overflow.
    wait_until(lambda: len(scores_of(embedded_store, service)) == 6)
    kept = {s["span_id"] for s in scores_of(embedded_store, service)}
    assert kept == {first.span_id, *(c.span_id for c in calls[-5:])}


def test_a_stop_evaluates_what_is_queued_first(
    embedded_store: EmbeddedStore, caplog: pytest.LogCaptureFixture
) -> None:
    """A collector stopping (a deploy, Ctrl-C) stores what it accepted, then stops evaluation:
    the calls still queued for evaluation are scored first, not forgotten."""
    gate = threading.Event()

    @evaluator(name=f"gated_{uuid.uuid4().hex[:6]}")
    def gated(data: EvalInput) -> float:
        gate.wait(10)
        return 1.0

    online = OnlineEvaluation(
        config([{"evaluators": [gated.name]}], cpu_share=0.01), embedded_store
    )
    online.start()
    service = f"svc-{uuid.uuid4().hex[:8]}"
    first, *rest = calls = [call(service) for _ in range(300)]
    store_calls(embedded_store, calls)
    online.offer([first])
    wait_until(lambda: online.depth() == 0)  # the worker holds the first, at the gate
    online.offer(rest)
    stopping = threading.Thread(target=online.stop, kwargs={"timeout": 60})
    stopping.start()
    gate.set()
    stopping.join(70)
    assert not stopping.is_alive()
    stats = online.snapshot()
    assert (stats["evaluated"], stats["dropped"], stats["queue_depth"]) == (300, 0, 0)
    assert len(scores_of(embedded_store, service)) == 300

    # Out of time, what is left is dropped, counted and said.
    @evaluator(name=f"slow_{uuid.uuid4().hex[:6]}")
    def slow(data: EvalInput) -> float:
        if data.output == "first":
            gate.wait(10)
        time.sleep(0.2)
        return 1.0

    gate.clear()
    online = OnlineEvaluation(config([{"evaluators": [slow.name]}]), embedded_store)
    online.start()
    first_answer = [{"role": "assistant", "parts": [{"type": "text", "content": "first"}]}]
    online.offer([call(service, output_messages=json.dumps(first_answer))])
    wait_until(lambda: online.depth() == 0)  # the worker holds the first, at the gate
    online.offer([call(service) for _ in range(199)])  # 40 s of evaluation, 5 s at 8 at once
    with caplog.at_level(logging.WARNING, logger="assay.collector.evaluation"):
        stopping = threading.Thread(target=online.stop, kwargs={"timeout": 1.0})
        stopping.start()
        gate.set()
        stopping.join()
        wait_until(lambda: sum(online.snapshot()[k] for k in ("evaluated", "dropped")) == 200)
        # The worker says so once its last scores are written, which may outlast the stop's
        # wait on a loaded machine.
        wait_until(lambda: "not done in time" in caplog.text)
    stats = online.snapshot()
    assert stats["dropped"] > 0 and stats["queue_depth"] == 0, stats
    assert f"dropped {stats['dropped']} evaluation(s) not done in time" in caplog.text


def test_a_crashing_evaluator_gives_an_error_score(
    embedded_store: EmbeddedStore, running: list[OnlineEvaluation]
) -> None:
    @evaluator(name=f"broken_{uuid.uuid4().hex[:6]}")
    def broken(output: str) -> float:
        raise RuntimeError("no verdict today")

    service = f"svc-{uuid.uuid4().hex[:8]}"
    online = start(embedded_store, config([{"evaluators": [broken.name]}]), running)
    calls = [call(service)]
    store_calls(embedded_store, calls)
    online.offer(calls)
    wait_until(lambda: len(scores_of(embedded_store, service)) == 1)
    (score,) = scores_of(embedded_store, service)
    assert "RuntimeError: no verdict today" in score["error"]
    assert score["passed"] is None
    assert online.snapshot()["failed"] == 1


def test_users_evaluators_load_from_a_module(tmp_path: Path, monkeypatch: Any) -> None:
    module = f"myevals_{uuid.uuid4().hex[:6]}"
    (tmp_path / f"{module}.py").write_text(
        "from assay.evaluators import evaluator\n\n"
        f"@evaluator(name='{module}_polite')\n"
        "def polite(output: str) -> bool:\n"
        "    return 'please' in output\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "assay.yaml").write_text(
        f"evaluation:\n  modules: [{module}]\n  rules:\n    - evaluators: [{module}_polite]\n"
    )
    cfg = load_evaluation_config(tmp_path / "assay.yaml")
    ((_, _, evaluators),) = compile_rules(cfg)
    assert [e.name for e in evaluators] == [f"{module}_polite"]


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("rules:\n    - evaluators: [no_such_thing]", "no evaluator named 'no_such_thing'"),
        ("rules:\n    - evaluators: [latency_budget]", "needs ms"),
        ("rules:\n    - evaluators: [pii]\n      where: {colour: red}", "unknown filter"),
        ("rules:\n    - evaluators: [pii]\n      sample: 2", "less than or equal to 1"),
        ("modules: [no_such_module_here]\n  rules: []", "no_such_module_here"),
    ],
)
def test_mistakes_in_the_rules_are_explained(tmp_path: Path, section: str, message: str) -> None:
    (tmp_path / "assay.yaml").write_text(f"evaluation:\n  {section}\n")
    with pytest.raises(ValueError, match=message):
        compile_rules(load_evaluation_config(tmp_path / "assay.yaml"))


@pytest.mark.integration
def test_the_collector_refuses_to_start_with_a_broken_rule(tmp_path: Path) -> None:
    (tmp_path / "assay.yaml").write_text("evaluation:\n  rules:\n    - evaluators: [nope]\n")
    with pytest.raises(RuntimeError, match="no evaluator named 'nope'"):
        start_collector(
            tmp_path / "data", tmp_path / "log", "--config", str(tmp_path / "assay.yaml")
        )
    assert not (tmp_path / "data").exists()  # nothing was created


@pytest.mark.integration
def test_demo_traffic_is_scored_end_to_end(tmp_path: Path) -> None:
    (tmp_path / "assay.yaml").write_text(
        "evaluation:\n"
        "  rules:\n"
        "    - evaluators: [json_valid, no_pii]\n"
        "      where: {service: checkout}\n"
        "    - evaluators: [no_refusal]\n"
        "      where: {service: search, operation: chat}\n"
        "      sample: 0.5\n"
    )
    collector = start_collector(
        tmp_path / "data", tmp_path / "collector.log", "--config", str(tmp_path / "assay.yaml")
    )
    try:
        # Enough calls that the search service's sampled half is never empty by chance.
        run_demo(f"http://127.0.0.1:{collector.grpc_port}", calls=120, quiet=True)
        # Every call of the three services (40 rows each at 120 calls: more than the 90 the
        # snapshot could start from), all stored before the expected scores are counted.
        collector.wait_until_stored()
        calls = collector.wait_for_rows(
            "SELECT service_name, operation, trace_id, span_id, status FROM llm_calls"
            " WHERE service_name IN ('checkout', 'search', 'support-bot')",
            90,
        )
        checkout = [c for c in calls if c["service_name"] == "checkout" and c["status"] == "ok"]
        search = [
            c
            for c in calls
            if c["service_name"] == "search" and c["status"] == "ok" and c["operation"] == "chat"
        ]
        sampled_search = [c for c in search if sampled(c["trace_id"], 0.5, salt=1)]
        expected = 2 * len(checkout) + len(sampled_search)
        assert checkout and 0 < len(sampled_search) < len(search)
        scores = collector.wait_for_rows(
            "SELECT name, span_id, trace_id, source, value FROM scores FINAL", expected
        )
        assert len(scores) == expected
        # The checkout asks for JSON and gets it: every answer passes json_valid.
        assert {s["value"] for s in scores if s["name"] == "json_valid"} == {1.0}
        assert {s["source"] for s in scores} == {"online"}
        pairs = {(s["span_id"], s["name"]) for s in scores}
        assert pairs == {
            *((c["span_id"], name) for c in checkout for name in ("json_valid", "no_pii")),
            *((c["span_id"], "no_refusal") for c in sampled_search),
        }

        detail = httpx.get(f"{collector.http_url}/api/calls/{checkout[0]['span_id']}").json()
        assert detail["call"]["service_name"] == "checkout"
        assert isinstance(detail["call"]["output_messages"], list)
        assert sorted(s["name"] for s in detail["scores"]) == ["json_valid", "no_pii"]

        health = httpx.get(f"{collector.http_url}/api/health").json()
        assert health["evaluation"]["evaluated"] == expected
        assert health["evaluation"]["dropped"] == 0
        missing = httpx.get(f"{collector.http_url}/api/calls/0000000000000000")
        assert missing.status_code == 404
    finally:
        assert collector.stop() == 0
    assert "online evaluation: calls offered" in collector.log()
    assert "evaluations queued" in collector.log()


def test_the_evaluation_thread_keeps_to_its_cpu_share() -> None:
    wall, cpu = time.monotonic(), time.thread_time()
    budget = CpuBudget(share=0.1, window=5.0)
    spun = time.monotonic()
    spin_until = time.thread_time() + 0.05
    while time.thread_time() < spin_until:
        pass
    spent = time.monotonic() - spun
    wait = budget.pause()
    # 50 ms of CPU at a 10% share needs 0.5 s of wall time in all: sleep for the rest, however
    # long a busy machine took to give the thread its 50 ms.
    least = max(0.05 / 0.1 - (time.monotonic() - wall), 0.0)
    # At most what its CPU asks for; nothing when the spin took longer than that already.
    most = max((time.thread_time() - cpu) / 0.1 - spent, 0.0)
    assert least - 0.001 <= wait <= most + 0.001
    assert CpuBudget(share=1.0).pause() < 0.01  # an idle thread does not wait


def test_the_example_config_is_valid() -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "assay.yaml"
    rules = compile_rules(load_evaluation_config(example))
    assert [len(evaluators) for _, _, evaluators in rules] == [3, 2, 3]


def test_online_scores_are_the_evaluators_own(
    embedded_store: EmbeddedStore, running: list[OnlineEvaluation]
) -> None:
    """What the worker stores (inline, several calls a wake-up, columns built as it goes) is
    what each evaluator gives when awaited on the whole stored row, field by field."""
    service = f"svc-{uuid.uuid4().hex[:8]}"
    specs: list[Any] = [
        "json_valid",
        "no_pii",
        "no_refusal",
        {"length": {"max_chars": 40}},
        {"contains_any": {"texts": ["refund", "invoice"], "ignore_case": True}},
        {"latency_budget": {"ms": 100}},
    ]
    online = start(embedded_store, config([{"evaluators": specs}]), running)
    texts = [
        '{"ok": 1}',
        "I'm sorry, but I can't help with that.",
        "Your REFUND is on its way; write to ann@example.com or call +44 20 7946 0958.",
        "not json, and longer than forty characters by quite a way",
    ]

    def answer(text: str) -> str:
        return json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": text}]}])

    calls = [call(service, output_messages=answer(text)) for text in texts]
    calls.append(call(service, status="error", output_messages="[]"))  # figures only
    store_calls(embedded_store, calls)
    online.offer(calls)
    expected_count = len(texts) * len(specs) + 1
    wait_until(lambda: len(scores_of(embedded_store, service)) == expected_count)
    columns, rows = embedded_store.query(
        f"SELECT span_id, name, value, label, passed, explanation, error, evaluator_version,"
        f" direction, source, experiment_id FROM {embedded_store.database}.scores FINAL"
        " WHERE trace_id IN {t:Array(String)}",
        {"t": [c.trace_id for c in calls]},
    )
    stored = {(row[0], row[1]): dict(zip(columns, row, strict=True)) for row in rows}
    ((_, _, evaluators),) = online._rules
    for one in calls:
        data = EvalInput.from_llm_call(
            {name: getattr(one, name) for name in one.__slots__}, with_input=True
        )
        for each in evaluators:
            if one.status == "error" and each.reads_output:
                assert (one.span_id, each.name) not in stored
                continue
            score = asyncio.run(each(data))
            row = stored[(one.span_id, each.name)]
            assert row == {
                "span_id": one.span_id,
                "name": each.name,
                "value": score.value,
                "label": score.label,
                "passed": score.passed,
                "explanation": score.explanation,
                "error": score.error,
                "evaluator_version": score.evaluator_version,
                "direction": score.direction,
                "source": "online",
                "experiment_id": "",
            }


def test_calls_a_crash_left_unscored_are_scored_at_the_next_start(
    embedded_store: EmbeddedStore, running: list[OnlineEvaluation]
) -> None:
    """The queue of evaluations lives in memory: a `kill -9` (or a stop out of time) loses
    what it held, while the calls are stored. The next start looks back `call_lookback`
    seconds for calls without an online score and offers them as they were offered."""
    seen: list[str] = []

    @evaluator(name=f"counted_{uuid.uuid4().hex[:6]}")
    def counted(data: EvalInput) -> float:
        seen.append(data.output)
        return 1.0

    with own_database(embedded_store, "lookback") as own:
        service = f"svc-{uuid.uuid4().hex[:8]}"
        rule = {"evaluators": [counted.name, "json_valid"], "where": {"service": service}}
        scored, *_ = calls = [call(service) for _ in range(6)]
        too_old = call(service, timestamp=time.time_ns() - 2 * 3600 * 10**9)
        other = call(f"other-{service}")  # no rule takes it
        failed = call(service, status="error", output_messages="")
        store_calls(own, [*calls, too_old, other, failed])
        first = start(own, config([rule], call_lookback=0), running)
        first.offer([scored])  # the run before the crash scored one call
        wait_until(lambda: len(scores_of(own, service)) == 2)
        first.stop()

        again = start(own, config([rule], call_lookback=900), running)
        wait_until(lambda: len(scores_of(own, service)) == 2 * 6)
        again.stop()
        by_span: dict[str, set[str]] = {}
        for score in scores_of(own, service):
            by_span.setdefault(score["span_id"], set()).add(score["name"])
        assert by_span == {c.span_id: {counted.name, "json_valid"} for c in calls}
        assert again.snapshot()["evaluated"] == 2 * 5  # not the call scored before
        # The rows read back are the calls as stored: their answers reached the evaluator.
        assert seen == [json.loads(ANSWER)[0]["parts"][0]["content"]] * 6


@pytest.mark.integration
def test_a_killed_collector_scores_what_its_queue_held_at_the_next_start(tmp_path: Path) -> None:
    module = f"slowevals_{uuid.uuid4().hex[:6]}"
    (tmp_path / f"{module}.py").write_text(
        "import time\n"
        "from assay.evaluators import evaluator\n\n"
        f"@evaluator(name='{module}_slow')\n"
        "def slow(output: str) -> float:\n"
        "    time.sleep(0.5)\n"
        "    return 1.0\n"
    )
    (tmp_path / "assay.yaml").write_text(
        f"evaluation:\n  modules: [{module}]\n  limits: {{{module}_slow: 1}}\n"
        f"  rules:\n    - evaluators: [{module}_slow]\n      where: {{service: checkout}}\n"
    )
    args = ("--config", str(tmp_path / "assay.yaml"))
    env = {"PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    collector = start_collector(tmp_path / "data", tmp_path / "first.log", *args, **env)
    try:
        run_demo(f"http://127.0.0.1:{collector.grpc_port}", calls=40, quiet=True)
        collector.wait_for_rows("SELECT span_id FROM scores", 1)  # the queue is being worked
    finally:
        collector.process.kill()  # kill -9: the queue, in memory, is gone
        collector.process.wait()
    again = start_collector(tmp_path / "data", tmp_path / "again.log", *args, **env)
    try:
        stored = again.query(
            "SELECT span_id FROM llm_calls FINAL WHERE service_name = 'checkout' AND status = 'ok'"
        )
        scores = again.wait_for_rows("SELECT span_id FROM scores FINAL", len(stored), timeout=60)
        assert sorted(s["span_id"] for s in scores) == sorted(c["span_id"] for c in stored)
    finally:
        assert again.stop() == 0
    assert "queued again for calls of the last 900 s" in again.log()


@pytest.mark.parametrize(
    "rule",
    [
        {},
        {"where": {"service": "a"}},
        {"where": {"service": ["a", "b"], "model": "gpt-4o"}},
        {"where": {"model": "gpt-4o-mini"}},  # the response model, else the request model
        {"where": {"status": "error", "provider": "anthropic"}},
        {"where": {"prompt_name": "greet", "prompt_version": ["2", "3"], "operation": "chat"}},
        {"where": {"tags": ["beta"]}, "tags": ["prod"]},
        {"tags": ["beta", "prod"]},
    ],
)
def test_a_rules_filter_in_sql_takes_the_calls_it_takes_in_python(
    embedded_store: EmbeddedStore, rule: dict[str, Any]
) -> None:
    """The look back asks the store for the calls some rule takes: the same calls `matches`
    takes when the writer offers them."""
    from assay.collector.evaluation.config import Rule

    with own_database(embedded_store, "filters") as own:
        calls = [
            call(
                service,
                model=model,
                request_model=request_model,
                status=status,
                provider=provider,
                prompt_name=prompt,
                prompt_version=version,
                tags=tags,
            )
            for service in ("a", "b", "c")
            for model, request_model in (("gpt-4o", "gpt-4o"), ("x", "gpt-4o-mini"), ("y", "z"))
            for status, provider in (("ok", "openai"), ("error", "anthropic"))
            for prompt, version in (("greet", "2"), ("greet", "1"), ("", ""))
            for tags in ([], ["beta"], ["beta", "prod"])
        ]
        store_calls(own, calls)
        parsed = Rule.model_validate({"evaluators": ["json_valid"], **rule})
        params: dict[str, Any] = {}
        condition = parsed.sql_filter(params)
        _, rows = own.query(
            f"SELECT span_id FROM {own.database}.llm_calls WHERE {condition}", params
        )
        taken = {c.span_id for c in calls if parsed.matches(c)}
        assert {span for (span,) in rows} == taken
        assert 0 < len(taken) <= len(calls)
