"""The evaluator model: scores, the `@evaluator` decorator, error scores, versions, the registry."""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
import sys
import threading
from dataclasses import asdict
from typing import Any

import pytest

from assay.collector.schema import LlmCallRow
from assay.evaluators import (
    EvalInput,
    Evaluator,
    Score,
    UnknownEvaluatorError,
    evaluator,
    get_evaluator,
    registered,
)
from assay.evaluators.heuristics import contains, exact_match, latency_budget


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


ANSWER = EvalInput(input="What is the capital of France?", output="Paris", expected="Paris")


# --- Score ------------------------------------------------------------------------------------


def test_a_score_refuses_nan_and_values_outside_the_unit_interval() -> None:
    with pytest.raises(ValueError, match="NaN"):
        Score(value=math.nan)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        Score(value=1.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        Score(value=-0.1)
    with pytest.raises(TypeError):
        Score(value="0.5")  # type: ignore[arg-type]


def test_a_score_clamps_floating_point_noise_and_takes_bools() -> None:
    assert Score(value=1.0000000000000002).value == 1.0
    assert Score(value=-1e-12).value == 0.0
    assert Score(value=True).value == 1.0


# --- results and thresholds -------------------------------------------------------------------


def test_a_float_result_becomes_a_named_versioned_timed_score() -> None:
    @evaluator(name="half", version="v7")
    def half(output: str) -> float:
        return 0.5

    score = run(half(ANSWER))
    assert score.name == "half"
    assert score.value == 0.5
    assert score.evaluator_version == "v7"
    assert score.passed is None  # no threshold, no verdict
    assert score.duration_ms is not None and score.duration_ms >= 0
    assert score.error == ""


def test_the_threshold_decides_passed() -> None:
    @evaluator(name="seventy", threshold=0.7)
    def seventy() -> float:
        return 0.7

    @evaluator(name="sixty", threshold=0.7)
    def sixty() -> float:
        return 0.6

    assert run(seventy(ANSWER)).passed is True
    assert run(sixty(ANSWER)).passed is False


def test_lower_is_better_evaluators_pass_at_or_below_the_threshold() -> None:
    @evaluator(name="risk", threshold=0.2, higher_is_better=False)
    def risk(metadata: dict[str, Any]) -> float:
        return float(metadata["risk"])

    assert run(risk(ANSWER, metadata={"risk": 0.1})).passed is True
    assert run(risk(ANSWER, metadata={"risk": 0.3})).passed is False


def test_a_bool_result_is_its_own_verdict() -> None:
    @evaluator(name="is_paris", threshold=0.99)
    def is_paris(output: str) -> bool:
        return output == "Paris"

    yes = run(is_paris(ANSWER))
    no = run(is_paris(ANSWER, output="Lyon"))
    assert (yes.value, yes.passed) == (1.0, True)
    assert (no.value, no.passed) == (0.0, False)


def test_a_returned_score_keeps_its_fields_and_gets_the_evaluators_identity() -> None:
    @evaluator(name="graded", threshold=0.5)
    def graded(output: str) -> Score:
        return Score(name="ignored", value=0.9, label="good", explanation="close enough")

    score = run(graded(ANSWER))
    assert (score.name, score.value, score.label, score.explanation) == (
        "graded",
        0.9,
        "good",
        "close enough",
    )
    assert score.passed is True  # the threshold fills in what the function left open
    assert score.evaluator_version == graded.version


def test_a_returned_passed_is_not_overridden_by_the_threshold() -> None:
    @evaluator(name="strict_judge", threshold=0.1)
    def strict_judge() -> Score:
        return Score(value=0.9, passed=False)

    assert run(strict_judge(ANSWER)).passed is False


# --- failures ---------------------------------------------------------------------------------


def test_an_exception_becomes_an_error_score() -> None:
    @evaluator(name="broken", threshold=0.5)
    def broken(output: str) -> float:
        raise RuntimeError("the model file is missing")

    score = run(broken(ANSWER))
    assert score.error == "RuntimeError: the model file is missing"
    assert score.value == 0.0
    assert score.passed is None  # not judged: neither a pass nor a failure
    assert score.name == "broken"
    assert score.duration_ms is not None


def test_an_async_exception_becomes_an_error_score() -> None:
    @evaluator(name="broken_async")
    async def broken_async(output: str) -> float:
        await asyncio.sleep(0)
        raise KeyError("missing")

    assert run(broken_async(ANSWER)).error == "KeyError: 'missing'"


def test_a_value_out_of_range_is_an_error_score_naming_the_value() -> None:
    @evaluator(name="overflowing")
    def overflowing() -> float:
        return 1.5

    score = run(overflowing(ANSWER))
    assert score.error.startswith("ValueError:")
    assert "1.5" in score.error


def test_a_result_of_the_wrong_type_is_an_error_score() -> None:
    @evaluator(name="chatty")
    def chatty() -> Any:
        return "looks good"

    score = run(chatty(ANSWER))
    assert score.error.startswith("TypeError:")
    assert "str" in score.error


def test_a_long_exception_message_is_cut() -> None:
    @evaluator(name="verbose_failure")
    def verbose_failure() -> float:
        raise ValueError("x" * 10_000)

    assert len(run(verbose_failure(ANSWER)).error) == 2000


def test_cancellation_is_not_turned_into_a_score() -> None:
    started = asyncio.Event()

    @evaluator(name="forever")
    async def forever() -> float:
        started.set()
        await asyncio.sleep(3600)
        return 1.0

    async def scenario() -> None:
        task = asyncio.create_task(forever(ANSWER))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(scenario())


# --- how functions are called -----------------------------------------------------------------


def test_a_sync_function_runs_off_the_event_loop_and_an_async_one_on_it() -> None:
    threads: dict[str, int] = {}

    @evaluator(name="sync_probe")
    def sync_probe() -> float:
        threads["sync"] = threading.get_ident()
        return 1.0

    @evaluator(name="async_probe")
    async def async_probe() -> float:
        threads["async"] = threading.get_ident()
        return 1.0

    async def scenario() -> int:
        await sync_probe(ANSWER)
        await async_probe(ANSWER)
        return threading.get_ident()

    loop_thread = run(scenario())
    assert threads["async"] == loop_thread
    assert threads["sync"] != loop_thread


def test_fields_are_passed_by_name() -> None:
    seen: dict[str, Any] = {}

    @evaluator(name="by_name")
    def by_name(output: str, expected: str | None, context: Any, input: Any, model: str) -> float:
        seen.update(output=output, expected=expected, context=context, input=input, model=model)
        return 1.0

    run(by_name(EvalInput(input="q", output="o", expected="e", context=["c"], model="m")))
    assert seen == {"output": "o", "expected": "e", "context": ["c"], "input": "q", "model": "m"}


def test_a_single_parameter_gets_the_whole_input() -> None:
    @evaluator(name="whole")
    def whole(item: EvalInput) -> float:
        return 1.0 if item.expected == item.output else 0.0

    @evaluator(name="whole_named_input")
    def whole_named_input(input: EvalInput) -> float:  # annotated: the EvalInput, not the field
        return 1.0 if isinstance(input, EvalInput) else 0.0

    assert run(whole(ANSWER)).value == 1.0
    assert run(whole_named_input(ANSWER)).value == 1.0


def test_var_keyword_functions_get_every_field() -> None:
    @evaluator(name="everything")
    def everything(**fields: Any) -> float:
        return 1.0 if {"output", "expected", "metadata", "duration_ms"} <= set(fields) else 0.0

    assert run(everything(ANSWER)).value == 1.0


def test_a_function_with_unknown_parameters_is_refused_at_decoration() -> None:
    with pytest.raises(TypeError, match="answer"):

        @evaluator(name="wrong_signature")
        def wrong_signature(answer: str, reference: str) -> float:
            return 1.0


def test_an_evaluator_can_be_called_with_fields() -> None:
    score = run(exact_match()(output="Paris", expected="Paris"))
    assert score.passed is True


def test_the_decorator_works_without_arguments() -> None:
    @evaluator
    def bare_decorated(output: str) -> bool:
        """Says whether there is an output."""
        return bool(output)

    assert isinstance(bare_decorated, Evaluator)
    assert bare_decorated.name == "bare_decorated"
    assert bare_decorated.description == "Says whether there is an output."
    assert run(bare_decorated(ANSWER)).passed is True


# --- versions ---------------------------------------------------------------------------------


def test_the_version_is_a_hash_of_code_and_configuration() -> None:
    def make(threshold: float | None) -> Evaluator:
        @evaluator(name="versioned", threshold=threshold)
        def versioned(output: str) -> float:
            return 1.0

        return versioned

    def changed_code(output: str) -> float:
        return 0.0

    first, again, other_threshold = make(0.5), make(0.5), make(0.6)
    assert len(first.version) == 12
    assert first.version == again.version
    assert first.version != other_threshold.version
    assert evaluator(name="versioned", threshold=0.5)(changed_code).version != first.version


def test_preset_versions_follow_their_configuration() -> None:
    assert contains("refund").version == contains("refund").version
    assert contains("refund").version != contains("refunds").version
    assert exact_match().version != exact_match(ignore_case=True).version


# --- the registry -----------------------------------------------------------------------------


def test_a_decorated_function_is_found_by_name() -> None:
    @evaluator(name="registered_probe")
    def registered_probe() -> float:
        return 1.0

    assert get_evaluator("registered_probe") is registered_probe
    assert "registered_probe" in registered()


def test_presets_are_found_by_name_and_their_default_instance_is_shared() -> None:
    names = set(registered())
    assert {"exact_match", "json_valid", "no_pii", "rouge_l", "correctness", "rubric"} <= names
    assert "pii" not in names  # a former name: it still works, but is not offered
    assert get_evaluator("json_valid") is get_evaluator("json_valid")
    assert run(get_evaluator("json_valid")(output='{"a": 1}')).passed is True


def test_a_preset_with_required_parameters_takes_them_as_options() -> None:
    with pytest.raises(TypeError, match="ms"):
        get_evaluator("latency_budget")
    budget = get_evaluator("latency_budget", ms=100)
    assert run(budget(output="", duration_ms=250)).passed is False
    assert budget.version == latency_budget(ms=100).version


def test_an_unknown_name_is_a_clear_key_error() -> None:
    with pytest.raises(UnknownEvaluatorError) as caught:
        get_evaluator("no_such_evaluator")
    assert isinstance(caught.value, KeyError)
    assert "no_such_evaluator" in str(caught.value)
    assert "json_valid" in str(caught.value)  # the message lists what exists


def test_options_for_an_already_configured_evaluator_are_refused() -> None:
    @evaluator(name="configured")
    def configured() -> float:
        return 1.0

    with pytest.raises(TypeError):
        get_evaluator("configured", threshold=0.5)


# --- EvalInput --------------------------------------------------------------------------------


def _genai(role: str, text: str, **extra: Any) -> dict[str, Any]:
    return {"role": role, "parts": [{"type": "text", "content": text}], **extra}


def test_an_llm_call_row_becomes_an_eval_input() -> None:
    row = asdict(
        LlmCallRow(
            timestamp=1,
            trace_id="t1",
            span_id="s1",
            parent_span_id="",
            service_name="support-bot",
            operation="chat",
            provider="openai",
            request_model="gpt-4o-mini",
            response_model="gpt-4o-mini-2024-07-18",
            model="gpt-4o-mini-2024-07-18",
            system_instructions=json.dumps([{"type": "text", "content": "Be brief."}]),
            input_messages=json.dumps(
                [
                    _genai("user", "Where is my parcel?"),
                    {"role": "assistant", "parts": [{"type": "tool_call", "name": "track"}]},
                    _genai("user", "Order 42."),
                ]
            ),
            output_messages=json.dumps(
                [
                    {
                        "role": "assistant",
                        "parts": [
                            {"type": "text", "content": "It ships today."},
                            {"type": "tool_call", "name": "notify"},
                        ],
                        "finish_reason": "stop",
                    },
                    _genai("assistant", "A second choice.", finish_reason="stop"),
                ]
            ),
            cost_usd=0.0012,
            duration_ms=840.5,
            prompt_name="support",
            tags=["beta"],
        )
    )
    data = EvalInput.from_llm_call(row)
    assert data.input == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Where is my parcel?"},
        {"role": "user", "content": "Order 42."},
    ]
    assert data.output == "It ships today."
    assert data.question == "Order 42."
    assert data.input_text == "system: Be brief.\nuser: Where is my parcel?\nuser: Order 42."
    assert (data.duration_ms, data.cost_usd, data.model) == (840.5, 0.0012, row["model"])
    assert data.metadata["trace_id"] == "t1"
    assert data.metadata["prompt_name"] == "support"
    assert data.metadata["tags"] == ["beta"]
    assert data.expected is None


def test_a_row_without_content_gives_empty_texts_not_an_exception() -> None:
    data = EvalInput.from_llm_call(
        {"input_messages": "", "output_messages": "{not json", "duration_ms": 3, "cost_usd": None}
    )
    assert (data.input, data.output, data.cost_usd, data.duration_ms) == ([], "", None, 3.0)


def test_a_row_may_carry_a_dataset_items_expected_output_and_context() -> None:
    data = EvalInput.from_llm_call(
        {
            "output_messages": json.dumps([_genai("assistant", "Paris")]),
            "expected": "Paris",
            "context": ["France's capital is Paris."],
        }
    )
    assert (data.output, data.expected, data.contexts) == (
        "Paris",
        "Paris",
        ["France's capital is Paris."],
    )


def test_openai_shaped_messages_are_read_too() -> None:
    data = EvalInput(
        input=[
            {"role": "user", "content": [{"type": "text", "text": "Describe"}, {"type": "image"}]}
        ],
        output="A cat.",
    )
    assert data.input_text == "Describe"
    assert EvalInput(output="", context="one passage").contexts == ["one passage"]


@pytest.mark.subprocess
def test_importing_the_package_does_not_import_the_heavy_dependencies() -> None:
    code = (
        "import sys, assay.evaluators\n"
        "heavy = ('openai', 'pydantic', 'jsonschema', 'httpx')\n"
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
