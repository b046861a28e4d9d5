"""An LLM judge against people, end to end: demo traffic scored online by a judge (the real
openai client against a scripted fake model, some answers unusable), people grading the same
calls through the API (a tie, a whole trace), and the agreement page's matrix and kappa checked
against a computation written out here from the stored rows."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from assay.collector.demo.fake_openai import FakeOpenAI
from assay.collector.demo.traffic import run_demo
from tests.conftest import RunningCollector, start_collector
from tests.ui.conftest import screenshot

pytestmark = [pytest.mark.integration, pytest.mark.browser]


def digest(text: str) -> int:
    return hashlib.sha256(text.encode()).digest()[0]


def judge_reply(request: dict[str, Any]) -> str:
    """A verdict fixed by the answer judged; one answer in eight is not JSON, twice over."""
    judged = digest(request["messages"][1]["content"])
    if judged % 8 == 0:
        return "I think it is fine."
    score = 0.9 if judged % 3 else 0.2
    label = "relevant" if score >= 0.5 else "irrelevant"  # a label that agrees with the score
    return json.dumps({"score": score, "label": label, "explanation": "."})


@pytest.fixture(scope="module")
def judged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCollector]:
    base = tmp_path_factory.mktemp("agreement")
    with FakeOpenAI(reply=judge_reply) as judge:
        options = {"base_url": judge.base_url, "api_key": "test-key", "max_retries": 0}
        (base / "assay.yaml").write_text(
            json.dumps(
                {
                    "evaluation": {
                        "rules": [
                            {
                                "evaluators": [{"answer_relevance": options}],
                                "where": {"service": "support-bot", "operation": "chat"},
                            }
                        ]
                    }
                }
            )
        )
        collector = start_collector(
            base / "data", base / "collector.log", "--config", str(base / "assay.yaml")
        )
        try:
            run_demo(f"http://127.0.0.1:{collector.grpc_port}", calls=90, quiet=True)
            yield collector
        finally:
            collector.stop()


def grade(collector: RunningCollector, author: str, value: int, **target: str) -> None:
    body = {**target, "value": value, "author": author}
    response = httpx.post(f"{collector.http_url}/api/feedback", json=body, timeout=30)
    assert response.status_code == 200, response.text


def test_the_agreement_of_a_judge_with_people(judged: RunningCollector, page: Page) -> None:
    calls = judged.wait_for_rows(
        "SELECT span_id, trace_id FROM llm_calls WHERE service_name = 'support-bot'"
        " AND operation = 'chat' AND status = 'ok'",
        5,
    )
    scores = judged.wait_for_rows(
        "SELECT span_id, passed, error, evaluator_version FROM scores"
        " WHERE name = 'answer_relevance'",
        len(calls),
        timeout=60,
    )
    assert any(s["error"] for s in scores) and any(s["passed"] for s in scores)
    humans: dict[str, float] = {}
    for index, call in enumerate(calls):
        span = call["span_id"]
        if index == 0:  # two people disagree: no verdict
            grade(judged, "ann", 1, span_id=span)
            grade(judged, "bob", 0, span_id=span)
            continue
        if index == 1:  # a grade of the whole trace counts for its calls
            grade(judged, "ann", 1, trace_id=call["trace_id"])
            humans[span] = 1.0
            continue
        value = int(digest(span) % 4 != 0)
        grade(judged, "ann", 1 - value, span_id=span)
        grade(judged, "ann", value, span_id=span)  # a later grade replaces the earlier one
        humans[span] = float(value)

    expected = {"both_pass": 0, "judge_only": 0, "human_only": 0, "both_fail": 0, "failures": 0}
    for score in scores:
        human = humans.get(score["span_id"])
        if human is None:
            continue
        if score["error"]:
            expected["failures"] += 1
        elif score["passed"]:
            expected["both_pass" if human else "judge_only"] += 1
        else:
            expected["human_only" if human else "both_fail"] += 1
    n = sum(expected[k] for k in ("both_pass", "judge_only", "human_only", "both_fail"))
    observed = (expected["both_pass"] + expected["both_fail"]) / n
    judge_yes = (expected["both_pass"] + expected["judge_only"]) / n
    human_yes = (expected["both_pass"] + expected["human_only"]) / n
    chance = judge_yes * human_yes + (1 - judge_yes) * (1 - human_yes)
    kappa = (observed - chance) / (1 - chance)

    page.goto(f"{judged.http_url}/agreement")
    row = page.locator("table.agreement tbody tr", has_text="answer_relevance")
    expect(row).to_have_count(1)
    cells = row.locator("td").all_inner_texts()
    assert cells[1] == scores[0]["evaluator_version"]
    assert [int(c) for c in cells[2:7]] == [
        n,
        expected["both_pass"],
        expected["judge_only"],
        expected["human_only"],
        expected["both_fail"],
    ]
    assert cells[7] == f"{100 * observed:.0f}%" and cells[8] == f"{kappa:.2f}"
    assert int(cells[9]) == expected["failures"] > 0
    screenshot(page, "agreement")
