"""Trajectory evaluators: presets that judge a whole agent run or conversation, not one call.

A run reaches an evaluator as an `EvalInput` like any call's (`run_input` builds one): `input`
is the conversation that set the goal, `output` the final answer, `duration_ms` and `cost_usd`
the whole run's (so `latency_budget` and `cost_budget` judge runs as they judge calls), and
`metadata["steps"]` the run's steps in order, each a `Step`. `context` holds the steps as text,
which is what `goal_completion`, an LLM judge on the same machinery as the call-level judges,
reads beside the goal and the answer.
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypedDict

from assay.evaluators.base import EvalInput, FunctionEvaluator, Messages, Score
from assay.evaluators.judges import OpenAIJudge
from assay.evaluators.registry import preset

STEPS = "steps"  # the metadata key of a run's steps
_TEXT_LIMIT = 400  # characters of a tool's arguments or result shown to a judge, per step


class Step(TypedDict, total=False):
    """One step of a run: an LLM call, a tool call, a sub-agent, a retrieval, ..."""

    kind: str  # span_kinds: agent, llm, tool, retriever, chain, ...
    name: str  # the tool's, the agent's or the span's name
    status: str  # ok | error
    trace_id: str
    span_id: str
    start_ms: float  # since the run started
    duration_ms: float
    arguments: str  # a tool call's
    result: str
    error: str


def run_input(
    steps: Sequence[Step],
    *,
    input: str | Messages = "",
    output: str = "",
    duration_ms: float | None = None,
    cost_usd: float | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> EvalInput:
    """What a trajectory evaluator reads: a run (or a conversation of runs) as one input."""
    return EvalInput(
        output=output,
        input=input,
        context=steps_text(steps) or None,
        metadata={**(metadata or {}), STEPS: list(steps)},
        duration_ms=duration_ms,
        cost_usd=cost_usd,
    )


def steps_of(data: EvalInput) -> list[Step]:
    steps = data.metadata.get(STEPS)
    if not isinstance(steps, list):
        raise ValueError("the input is no run: metadata has no 'steps' (see run_input)")
    return steps


def _short(text: str) -> str:
    return text if len(text) <= _TEXT_LIMIT else text[:_TEXT_LIMIT] + "…"


def steps_text(steps: Iterable[Step]) -> str:
    """The run as numbered lines a judge can read: what each step did and whether it failed."""
    lines = []
    for number, step in enumerate(steps, 1):
        line = f"{number}. {step.get('kind', 'span')} {step.get('name', '')}".rstrip()
        if step.get("arguments"):
            line += f" arguments={_short(step['arguments'])}"
        if step.get("result"):
            line += f" → {_short(step['result'])}"
        if step.get("status") == "error":
            line += f" [error{': ' + step['error'] if step.get('error') else ''}]"
        lines.append(line)
    return "\n".join(lines)


def _trajectory(
    fn: Callable[[EvalInput], Score], name: str, description: str, **config: Any
) -> FunctionEvaluator:
    evaluator = FunctionEvaluator(fn, name=name, description=description, config=config)
    evaluator.reads_output = False  # the steps, not the answer: runs stored without content too
    return evaluator


@preset
def no_tool_errors(*, max_errors: int = 0, name: str = "no_tool_errors") -> FunctionEvaluator:
    """At most `max_errors` tool calls of the run failed; the value is the share that worked."""

    def run(data: EvalInput) -> Score:
        tools = [s for s in steps_of(data) if s.get("kind") == "tool"]
        failed = Counter(str(s.get("name", "")) for s in tools if s.get("status") == "error")
        errors = sum(failed.values())
        return Score(
            value=1.0 - errors / len(tools) if tools else 1.0,
            label="tool_errors" if errors else "no_tool_errors",
            passed=errors <= max_errors,
            explanation=(
                f"{errors} of {len(tools)} tool calls failed: "
                + ", ".join(f"{tool} ×{n}" for tool, n in sorted(failed.items()))
                if errors
                else f"{len(tools)} tool calls, none failed"
            ),
        )

    return _trajectory(run, name, "the run's tool calls worked", max_errors=max_errors)


@preset
def step_budget(
    *, max_llm_calls: int | None = None, max_steps: int | None = None, name: str = "step_budget"
) -> FunctionEvaluator:
    """The run made at most `max_llm_calls` LLM calls and `max_steps` LLM and tool calls; over
    it, the value is budget / used (the worse of the two)."""
    if max_llm_calls is None and max_steps is None:
        raise ValueError("step_budget needs max_llm_calls or max_steps")
    for budget in (max_llm_calls, max_steps):
        if budget is not None and budget <= 0:
            raise ValueError("step_budget needs positive budgets")

    def run(data: EvalInput) -> Score:
        steps = steps_of(data)
        llm = sum(1 for s in steps if s.get("kind") == "llm")
        tools = sum(1 for s in steps if s.get("kind") == "tool")
        ratios = [
            budget / used
            for budget, used in ((max_llm_calls, llm), (max_steps, llm + tools))
            if budget is not None and used > budget
        ]
        return Score(
            value=min(ratios, default=1.0),
            label="over_budget" if ratios else "within_budget",
            passed=not ratios,
            explanation=f"{llm} LLM calls, {tools} tool calls",
        )

    return _trajectory(
        run,
        name,
        "the run stayed within a number of steps",
        max_llm_calls=max_llm_calls,
        max_steps=max_steps,
    )


def _call_key(step: Step) -> tuple[str, str]:
    arguments = step.get("arguments", "")
    # the same arguments in another key order or spacing are the same call
    with contextlib.suppress(TypeError, ValueError):
        arguments = json.dumps(json.loads(arguments), sort_keys=True, separators=(",", ":"))
    return str(step.get("name", "")), arguments


@preset
def no_loops(*, max_repeats: int = 2, name: str = "no_loops") -> FunctionEvaluator:
    """No tool was called with the same arguments more than `max_repeats` times in the run
    (an agent going round in circles). The value is 1, or max_repeats / the most repeats."""
    if max_repeats < 1:
        raise ValueError("no_loops needs max_repeats >= 1")

    def run(data: EvalInput) -> Score:
        calls = Counter(_call_key(s) for s in steps_of(data) if s.get("kind") == "tool")
        loops = {key: n for key, n in calls.items() if n > max_repeats}
        worst = max(loops.values(), default=0)
        return Score(
            value=max_repeats / worst if loops else 1.0,
            label="loop" if loops else "no_loop",
            passed=not loops,
            explanation=(
                "; ".join(f"{tool}({args}) ×{n}" for (tool, args), n in sorted(loops.items()))
                if loops
                else f"{sum(calls.values())} tool calls, none repeated over {max_repeats}×"
            ),
        )

    return _trajectory(run, name, "the run repeats no tool call", max_repeats=max_repeats)


_GOAL_COMPLETION = """\
You judge whether an AI agent achieved what the user asked for. You see the conversation that \
set the goal, the steps the agent took (LLM calls, tool calls with their arguments and results, \
errors) and its final answer. Judge the outcome, not the path: did the final answer, backed by \
what the steps actually returned, do what the user wanted? An answer that claims success a \
failed tool call contradicts has not completed the goal; asking the user a necessary \
clarifying question is partial completion.
Score 1 when the goal was fully achieved, 0 when it was not achieved at all, and in between \
when part of it was."""


@preset
def goal_completion(*, name: str = "goal_completion", **options: Any) -> OpenAIJudge:
    """An LLM judge of a whole run or conversation: did the agent achieve the user's goal?

    Options are `OpenAIJudge`'s: model, base_url, api_key, client, threshold (0.5), ..."""
    return OpenAIJudge(
        name,
        instructions=_GOAL_COMPLETION,
        template=(
            "{input}\n\n{context}\n\n{output}\n\n"
            "<input> is the conversation that set the goal, <context> the agent's steps in "
            "order, <output> its final answer."
        ),
        labels=("completed", "partially_completed", "not_completed"),
        ordered_labels=True,
        description="the agent achieved the user's goal",
        **options,
    )
