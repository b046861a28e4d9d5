"""LLM-as-judge presets: the real `openai` client against a local fake with scripted verdicts."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from openai import AsyncOpenAI
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from assay.collector.demo.fake_openai import FAIL_500, FakeOpenAI
from assay.evaluators import (
    EvalInput,
    OpenAIJudge,
    Score,
    answer_relevance,
    context_relevance,
    correctness,
    faithfulness,
    get_evaluator,
    no_toxicity,
    rubric,
)
from assay.instrumentation import instrument, pricing, uninstrument

QUESTION = EvalInput(
    input=[{"role": "user", "content": "What is the capital of France?"}],
    output="Paris is the capital.",
    expected="Paris",
    context=["France's capital is Paris.", "Lyon is known for its food."],
)


def verdict(score: Any, label: str = "correct", explanation: str = "Matches.") -> str:
    return json.dumps({"score": score, "label": label, "explanation": explanation})


class Script:
    """The judge's answers, one per attempt; the attempt is read from the request itself.

    A function of the request (not a queue) so that `fake.chat_completion(request)` can
    compute the same response body again for the usage it reported.
    """

    def __init__(self) -> None:
        self.answers: list[str] = [verdict(1.0)]
        self.requests: list[dict[str, Any]] = []

    def __call__(self, request: dict[str, Any]) -> str:
        self.requests.append(request)
        attempt = sum(1 for m in request["messages"] if m["role"] == "assistant")
        return self.answers[min(attempt, len(self.answers) - 1)]


@pytest.fixture
def script() -> Script:
    return Script()


@pytest.fixture
def fake(script: Script) -> Iterator[FakeOpenAI]:
    with FakeOpenAI(reply=script) as server:
        yield server


def judge_options(fake: FakeOpenAI, **options: Any) -> dict[str, Any]:
    return {"base_url": fake.base_url, "api_key": "test-key", "max_retries": 0, **options}


def evaluate(judge: OpenAIJudge, data: EvalInput = QUESTION) -> Score:
    result: Score = asyncio.run(judge(data))
    return result


def priced_usage(fake: FakeOpenAI) -> tuple[int, int, float]:
    """Tokens and cost of every request the fake answered, from the bodies it sent."""
    input_tokens = output_tokens = 0
    cost = 0.0
    for request in fake.requests:
        body = fake.chat_completion(request)
        usage = body["usage"]
        input_tokens += usage["prompt_tokens"]
        output_tokens += usage["completion_tokens"]
        call_cost = pricing.cost_usd(
            body["model"],
            usage["prompt_tokens"],
            usage["completion_tokens"],
            usage["prompt_tokens_details"]["cached_tokens"],
        )
        assert call_cost is not None and call_cost > 0
        cost += call_cost
    return input_tokens, output_tokens, cost


# --- verdicts ---------------------------------------------------------------------------------


def test_a_valid_verdict_becomes_the_score(fake: FakeOpenAI, script: Script) -> None:
    script.answers = [verdict(0.8, "Partially correct", "Right city, vague wording.")]
    score = evaluate(correctness(**judge_options(fake)))
    assert score.error == ""
    assert score.name == "correctness"
    assert score.value == 0.8
    assert score.label == "partially_correct"  # labels are compared and stored normalised
    assert score.explanation == "Right city, vague wording."
    assert score.passed is True  # default threshold 0.5
    assert len(fake.requests) == 1


def test_the_request_asks_for_json_and_spells_the_schema(fake: FakeOpenAI) -> None:
    evaluate(correctness(**judge_options(fake, model="gpt-4o-mini")))
    request = fake.requests[0]
    assert request["model"] == "gpt-4o-mini"
    assert request["response_format"] == {"type": "json_object"}
    assert request["temperature"] == 0.0
    system, user = request["messages"]
    assert system["role"] == "system"
    assert (
        '{"score": <a number from 0 to 1>, "label": "<one of correct, partially_correct, '
        'incorrect>", "explanation": "<one to three sentences>"}'
    ) in system["content"]
    # The data, each part in its own tag.
    assert "<input>\nWhat is the capital of France?\n</input>" in user["content"]
    assert "<expected>\nParis\n</expected>" in user["content"]
    assert "<output>\nParis is the capital.\n</output>" in user["content"]


def test_an_unparseable_answer_is_retried_once_with_the_fault_explained(
    fake: FakeOpenAI, script: Script
) -> None:
    script.answers = ["The answer looks correct to me.", verdict(1.0)]
    score = evaluate(correctness(**judge_options(fake)))
    assert (score.value, score.label, score.error) == (1.0, "correct", "")
    assert len(fake.requests) == 2
    retry = fake.requests[1]["messages"]
    assert retry[2] == {"role": "assistant", "content": "The answer looks correct to me."}
    assert retry[3]["role"] == "user"
    assert "not a JSON object" in retry[3]["content"]
    assert '"score"' in retry[3]["content"]


def test_two_unusable_answers_give_an_error_score(fake: FakeOpenAI, script: Script) -> None:
    script.answers = ["Correct!", "Still correct!"]
    score = evaluate(correctness(**judge_options(fake)))
    assert len(fake.requests) == 2  # one retry, no more
    assert score.error.startswith("JudgeAnswerError: the answer is not a JSON object")
    assert score.value == 0.0
    assert score.passed is None
    assert "unusable twice" in score.explanation
    assert "'Still correct!'" in score.explanation
    # The failed judgement still cost two calls.
    input_tokens, output_tokens, cost = priced_usage(fake)
    assert (score.input_tokens, score.output_tokens) == (input_tokens, output_tokens)
    assert score.cost_usd == pytest.approx(cost)


@pytest.mark.parametrize(
    ("answer", "fault"),
    [
        (verdict(1.5), "outside 0..1"),
        (verdict(-0.2), "outside 0..1"),
        (verdict("0.9"), "score"),  # a string is not a number, strictly
        (verdict(True), "score"),
        (json.dumps({"score": 1.0, "label": "correct"}), "explanation"),
        (verdict(1.0, label="great"), "not one of"),
        (json.dumps([1.0, "correct"]), "not an object"),
        ("", "empty"),
        ('{"score": NaN, "label": "correct", "explanation": "x"}', "score"),
        # A label that says the opposite of the score: which one would the UI believe?
        (verdict(0.0, label="correct"), "contradicts"),
        (verdict(0.9, label="incorrect"), "contradicts"),
        # Two scores in one answer: json.loads would silently keep the last.
        ('{"score": 1, "label": "correct", "explanation": "x", "score": 0}', "twice"),
    ],
)
def test_malformed_verdicts_are_retried(
    fake: FakeOpenAI, script: Script, answer: str, fault: str
) -> None:
    script.answers = [answer, verdict(0.0, "incorrect")]
    score = evaluate(correctness(**judge_options(fake)))
    assert len(fake.requests) == 2
    assert fault in fake.requests[1]["messages"][3]["content"]
    assert (score.value, score.label, score.passed) == (0.0, "incorrect", False)


def test_a_verdict_in_a_code_fence_is_accepted(fake: FakeOpenAI, script: Script) -> None:
    script.answers = ["```json\n" + verdict(1.0) + "\n```"]
    score = evaluate(correctness(**judge_options(fake)))
    assert (score.value, len(fake.requests)) == (1.0, 1)


# --- rubric -----------------------------------------------------------------------------------


def test_a_rubric_scale_is_mapped_to_the_unit_interval(fake: FakeOpenAI, script: Script) -> None:
    script.answers = [verdict(4, label="good")]
    judge = rubric(
        'Is {output} polite? Answer as {"like": "this"}.', scale=(1, 5), **judge_options(fake)
    )
    score = evaluate(judge)
    assert score.value == 0.75  # (4 - 1) / (5 - 1)
    assert score.label == "good"
    system, user = fake.requests[0]["messages"]
    assert "on a scale from 1 to 5" in system["content"]
    assert '"score": <a number from 1 to 5>' in system["content"]
    # Placeholders filled, other braces left alone.
    assert user["content"] == (
        'Is <output>\nParis is the capital.\n</output> polite? Answer as {"like": "this"}.'
    )


def test_a_rubric_score_outside_its_scale_is_malformed(fake: FakeOpenAI, script: Script) -> None:
    script.answers = [verdict(6, label="good"), verdict(0, label="good")]
    score = evaluate(rubric("Be polite.", scale=(1, 5), **judge_options(fake)))
    assert len(fake.requests) == 2
    assert score.error == "JudgeAnswerError: score 0 is outside 1..5"


def test_a_rubric_without_placeholders_gets_the_input_and_output(
    fake: FakeOpenAI, script: Script
) -> None:
    script.answers = [verdict(5, label="polite")]
    score = evaluate(rubric("Is the answer polite?", **judge_options(fake)), EvalInput(output="Hi"))
    assert score.value == 1.0
    user = fake.requests[0]["messages"][1]["content"]
    assert user.startswith("Is the answer polite?\n\n<input>\n(none)\n</input>")
    assert user.endswith("<output>\nHi\n</output>")


# --- usage and cost ---------------------------------------------------------------------------


def test_tokens_and_cost_are_the_priced_usage_of_the_response(fake: FakeOpenAI) -> None:
    score = evaluate(correctness(**judge_options(fake)))
    input_tokens, output_tokens, cost = priced_usage(fake)
    assert input_tokens > 0 and output_tokens > 0
    assert (score.input_tokens, score.output_tokens) == (input_tokens, output_tokens)
    assert score.cost_usd == pytest.approx(cost)


def test_a_retry_adds_up_both_calls(fake: FakeOpenAI, script: Script) -> None:
    script.answers = ["nope", verdict(1.0)]
    score = evaluate(correctness(**judge_options(fake)))
    input_tokens, output_tokens, cost = priced_usage(fake)
    assert len(fake.requests) == 2
    assert (score.input_tokens, score.output_tokens) == (input_tokens, output_tokens)
    assert score.cost_usd == pytest.approx(cost)


def test_an_unpriced_judge_model_has_tokens_but_no_cost(fake: FakeOpenAI) -> None:
    score = evaluate(correctness(**judge_options(fake, model="my-local-llama")))
    assert score.error == ""
    assert score.input_tokens and score.input_tokens > 0
    assert score.cost_usd is None  # unknown, not free


# --- failures ---------------------------------------------------------------------------------


def test_a_server_error_gives_an_error_score(fake: FakeOpenAI) -> None:
    score = evaluate(correctness(**judge_options(fake, model=FAIL_500)))
    assert score.error.startswith("InternalServerError:")
    assert "500" in score.error
    assert (score.value, score.passed, score.cost_usd) == (0.0, None, None)


def test_an_unreachable_endpoint_gives_an_error_score() -> None:
    judge = correctness(base_url="http://127.0.0.1:9/v1", api_key="k", max_retries=0, timeout=2)
    assert evaluate(judge).error.startswith("APIConnectionError:")


def test_a_missing_field_is_an_error_score_without_a_request(fake: FakeOpenAI) -> None:
    score = evaluate(correctness(**judge_options(fake)), EvalInput(input="q", output="a"))
    assert score.error == "ValueError: correctness needs expected, and this input has none"
    assert score.cost_usd is None
    assert fake.requests == []
    no_context = evaluate(faithfulness(**judge_options(fake)), EvalInput(output="a"))
    assert "needs context" in no_context.error


# --- the presets ------------------------------------------------------------------------------


def test_faithfulness_numbers_the_context_passages(fake: FakeOpenAI, script: Script) -> None:
    script.answers = [verdict(1.0, "faithful")]
    score = evaluate(faithfulness(**judge_options(fake)))
    assert (score.value, score.label) == (1.0, "faithful")
    user = fake.requests[0]["messages"][1]["content"]
    assert (
        "<context>\n[1] France's capital is Paris.\n\n[2] Lyon is known for its food.\n</context>"
        in user
    )


def test_context_relevance_reads_the_question_and_context_only(
    fake: FakeOpenAI, script: Script
) -> None:
    script.answers = [verdict(0.5, "partially_relevant")]
    score = evaluate(context_relevance(**judge_options(fake)))
    assert (score.value, score.label) == (0.5, "partially_relevant")
    user = fake.requests[0]["messages"][1]["content"]
    assert "<question>\nWhat is the capital of France?\n</question>" in user
    assert "<output>" not in user


def test_answer_relevance(fake: FakeOpenAI, script: Script) -> None:
    script.answers = [verdict(0.2, "irrelevant")]
    score = evaluate(answer_relevance(**judge_options(fake)))
    assert (score.value, score.label, score.passed) == (0.2, "irrelevant", False)


def test_no_toxicity_scores_a_clean_answer_high(fake: FakeOpenAI, script: Script) -> None:
    script.answers = [verdict(0.1, "toxic")]
    toxic = evaluate(no_toxicity(**judge_options(fake)))
    assert (toxic.value, toxic.label, toxic.passed) == (0.1, "toxic", False)
    script.answers = [verdict(0.9, "non-toxic")]
    clean = evaluate(no_toxicity(**judge_options(fake)))
    assert (clean.label, clean.passed, clean.direction) == ("non_toxic", True, "higher_is_better")
    system = script.requests[-1]["messages"][0]["content"]
    assert "Score 1 when the answer is not toxic at all" in system


# --- configuration ----------------------------------------------------------------------------


def test_settings_come_from_assay_variables_then_openai_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://openai.example/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "openai-key")
    monkeypatch.delenv("ASSAY_JUDGE_BASE_URL", raising=False)
    monkeypatch.delenv("ASSAY_JUDGE_MODEL", raising=False)
    monkeypatch.delenv("OPENAI_MODEL", raising=False)
    monkeypatch.setenv("ASSAY_JUDGE_API_KEY", "judge-key")
    judge = correctness()
    assert (judge.model, judge.base_url, judge.api_key) == (
        "gpt-4o-mini",
        "http://openai.example/v1",
        "judge-key",
    )
    monkeypatch.setenv("ASSAY_JUDGE_MODEL", "gpt-4.1-mini")
    monkeypatch.setenv("ASSAY_JUDGE_BASE_URL", "http://judge.example/v1")
    judge = correctness()
    assert (judge.model, judge.base_url) == ("gpt-4.1-mini", "http://judge.example/v1")
    assert correctness(model="gpt-4o").model == "gpt-4o"


def test_the_judge_model_is_part_of_the_version() -> None:
    assert correctness(model="gpt-4o").version == correctness(model="gpt-4o").version
    assert correctness(model="gpt-4o").version != correctness(model="gpt-4o-mini").version


def test_judges_are_available_by_name() -> None:
    judge = get_evaluator("faithfulness")
    assert isinstance(judge, OpenAIJudge)
    assert judge.name == "faithfulness"


def test_a_judge_can_be_used_from_one_event_loop_after_another(fake: FakeOpenAI) -> None:
    # A notebook runs each experiment in its own asyncio.run: the client must follow.
    judge = correctness(**judge_options(fake))
    assert evaluate(judge).error == ""
    assert evaluate(judge).error == ""
    assert len(fake.requests) == 2


def test_a_client_of_your_own_is_used(fake: FakeOpenAI) -> None:
    async def scenario() -> Score:
        async with AsyncOpenAI(base_url=fake.base_url, api_key="mine", max_retries=0) as client:
            return await correctness(client=client)(QUESTION)

    assert asyncio.run(scenario()).value == 1.0
    assert len(fake.requests) == 1


# --- instrumentation --------------------------------------------------------------------------


def test_the_judges_own_calls_make_no_llm_spans(fake: FakeOpenAI) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    uninstrument()
    instrument(tracer_provider=provider, capture_content=True)
    try:

        async def app_call_then_judge() -> Score:
            async with AsyncOpenAI(base_url=fake.base_url, api_key="k", max_retries=0) as client:
                await client.chat.completions.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": "Hi"}]
                )
            return await correctness(**judge_options(fake))(QUESTION)

        score = asyncio.run(app_call_then_judge())
    finally:
        uninstrument()
        provider.shutdown()
    assert score.error == ""
    assert len(fake.requests) == 2
    # The application's call is traced (the instrumentation works); the judge's is not.
    spans = exporter.get_finished_spans()
    assert [span.name for span in spans] == ["chat gpt-4o-mini"]
