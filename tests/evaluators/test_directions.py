"""One direction for every built-in evaluator: a higher value is better and `passed` agrees.

Every preset the registry offers is run over a battery of good and bad outputs; for each, any
passing value must be at least every failing value, and its scores must say higher-is-better.
A preset added later is covered by this test or fails it for lack of a configuration."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from assay.collector.demo.fake_openai import FakeOpenAI
from assay.evaluators import (
    EvalInput,
    Evaluator,
    OpenAIJudge,
    Score,
    Step,
    evaluator,
    get_evaluator,
    run_input,
)
from assay.evaluators.base import HIGHER_IS_BETTER, LOWER_IS_BETTER
from assay.evaluators.registry import preset_names

OUTPUTS = [
    "Paris",
    "paris",
    "",
    "The capital of France is Paris.",
    "Lyon",
    '{"a": 1}',
    '{"b": [1, 2]}',
    "not json {",
    "I'm sorry, but I can't help with that.",
    "Sure: write to ada@example.com or call +44 20 7946 0958.",
    "card 4111 1111 1111 1111",
    "word " * 600,
]
FIGURES = [(12.0, 0.0001), (800.0, 0.004), (4_000.0, 0.2)]
CONTEXT = ["France's capital is Paris.", "Lyon is known for its food."]

# Options for the presets that need some, or whose `passed` needs a threshold to exist.
OPTIONS: dict[str, dict[str, Any]] = {
    "contains_all": {"texts": ["Paris", "France"]},
    "contains_any": {"texts": ["Paris", "Lyon"]},
    "regex": {"pattern": r"\bParis\b"},
    "json_schema": {"schema": {"type": "object", "required": ["a"]}},
    "length": {"max_chars": 200},
    "latency_budget": {"ms": 1_000},
    "cost_budget": {"usd": 0.01},
    "levenshtein": {"threshold": 0.8},
    "token_f1": {"threshold": 0.5},
    "rouge_l": {"threshold": 0.5},
    "bleu": {"threshold": 0.3},
    "rubric": {"template": "Is the answer right and short?"},
    "step_budget": {"max_llm_calls": 3},
}
# Runs for the trajectory presets (calls are no runs to them: error scores, left out below).
_LLM: Step = {"kind": "llm", "name": "chat"}
_TOOL: Step = {"kind": "tool", "name": "lookup", "arguments": '{"a": 1}'}
STEPS: list[list[Step]] = [
    [],
    [_LLM, _TOOL, _LLM],
    [_LLM, {**_TOOL, "status": "error"}, _TOOL, _LLM],
    [_LLM, _TOOL, _TOOL, _TOOL, _LLM],
    [_LLM] * 5 + [_TOOL] * 2,
]


_REQUESTS = itertools.count()


def judge_reply(request: dict[str, Any]) -> str:
    """Verdicts spread over the judge's scale, request after request."""
    system = request["messages"][0]["content"]
    found = re.search(r"a number from (\S+) to (\S+)>", system)
    assert found is not None, system
    low, high = (float(x) for x in found.groups())
    share = next(_REQUESTS) * 37 % 256 / 255
    labels = re.search(r'"label": "<one of ([^>]+)>"', system)
    # The best label for a passing score, the worst for a failing one: a judge's label that
    # contradicts its score is an unusable answer.
    choices = labels.group(1).split(", ") if labels else ["ok"]
    label = choices[0] if share >= 0.5 else choices[-1]
    return json.dumps({"score": low + share * (high - low), "label": label, "explanation": "."})


@pytest.fixture(scope="module")
def judge() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(reply=judge_reply) as server:
        yield server


def build(name: str, judge: FakeOpenAI) -> Evaluator:
    options = dict(OPTIONS.get(name, {}))
    made = get_evaluator(name, **options)
    if isinstance(made, OpenAIJudge):  # a judge asks the fake model
        options.update(base_url=judge.base_url, api_key="test-key", max_retries=0)
        made = get_evaluator(name, **options)
    return made


def battery() -> list[EvalInput]:
    inputs = []
    for output in OUTPUTS:
        for expected in ("Paris", "The capital of France is Paris."):
            for duration, cost in FIGURES:
                inputs.append(
                    EvalInput(
                        input="What is the capital of France?",
                        output=output,
                        expected=expected,
                        context=CONTEXT,
                        duration_ms=duration,
                        cost_usd=cost,
                    )
                )
    for steps in STEPS:
        for output in ("Paris", "Lyon"):
            inputs.append(
                run_input(
                    steps,
                    input="What is the capital of France?",
                    output=output,
                    duration_ms=800.0,
                    cost_usd=0.004,
                )
            )
    return inputs


def scores_of(evaluator: Evaluator, inputs: list[EvalInput]) -> list[Score]:
    async def run() -> list[Score]:
        return list(await asyncio.gather(*(evaluator(data) for data in inputs)))

    return asyncio.run(run())


@pytest.mark.parametrize("name", preset_names())
def test_every_passing_value_is_at_least_every_failing_value(name: str, judge: FakeOpenAI) -> None:
    evaluator = build(name, judge)
    inputs = battery()
    if isinstance(evaluator, OpenAIJudge):
        inputs = inputs[::3]  # every judge call is an HTTP round trip: a sample is enough
    scores = [s for s in scores_of(evaluator, inputs) if not s.error]
    passing = [s.value for s in scores if s.passed is True]
    failing = [s.value for s in scores if s.passed is False]
    assert passing and failing, f"{name}: the battery must give both outcomes"
    assert min(passing) >= max(failing), (
        f"{name}: a pass at {min(passing)}, a fail at {max(failing)}"
    )
    assert {s.direction for s in scores} == {HIGHER_IS_BETTER}
    assert evaluator.direction == HIGHER_IS_BETTER


def test_a_custom_evaluator_declares_its_direction_and_its_scores_carry_it() -> None:
    @evaluator(name="hedging", threshold=0.3, higher_is_better=False)
    def hedging(output: str) -> float:
        """How much of the answer hedges (lower is better)."""
        words = output.split()
        return sum(w in ("maybe", "perhaps") for w in words) / max(len(words), 1)

    calm, vague = scores_of(
        hedging, [EvalInput(output="Paris."), EvalInput(output="maybe perhaps")]
    )
    assert (calm.value, calm.passed, calm.direction) == (0.0, True, LOWER_IS_BETTER)
    assert (vague.value, vague.passed, vague.direction) == (1.0, False, LOWER_IS_BETTER)
