"""Evaluators, datasets and experiments.

::

    from assay.evaluators import EvalInput, evaluator, exact_match, correctness

    @evaluator(name="mentions_refund", threshold=1.0)
    def mentions_refund(output: str) -> bool:
        return "refund" in output.lower()

    score = await exact_match()(EvalInput(output="Paris", expected="Paris"))

Experiments::

    from assay.evaluators import Dataset, evaluate, compare

    dataset = Dataset("capitals", [{"input": "Capital of France?", "expected": "Paris"}])
    a = evaluate(dataset, prompt_a, [exact_match()], experiment="prompt-a")
    b = evaluate(dataset, prompt_b, [exact_match()], experiment="prompt-b")
    compare(a, b)          # per evaluator: delta, 95% CI, p-value, improved / regressed items

Presets are factories (`contains("refund")`, `json_schema({...})`, `correctness(model=...)`);
`get_evaluator(name)` resolves a preset's default instance or a registered `@evaluator`.
"""

from assay.evaluators.base import EvalInput, Evaluator, FunctionEvaluator, Score, evaluator
from assay.evaluators.client import CollectorError
from assay.evaluators.comparison import Comparison, compare
from assay.evaluators.dataset import Dataset, DatasetItem
from assay.evaluators.experiment import RunNotRecorded, aevaluate, evaluate
from assay.evaluators.heuristics import (
    bleu,
    contains,
    contains_all,
    contains_any,
    cost_budget,
    exact_match,
    json_schema,
    json_valid,
    latency_budget,
    length,
    levenshtein,
    no_pii,
    no_refusal,
    pii,
    refusal,
    refuses,
    regex,
    rouge_l,
    token_f1,
)
from assay.evaluators.judges import (
    JudgeAnswerError,
    OpenAIJudge,
    answer_relevance,
    context_relevance,
    correctness,
    faithfulness,
    no_toxicity,
    rubric,
    toxicity,
)
from assay.evaluators.registry import UnknownEvaluatorError, get_evaluator, registered
from assay.evaluators.results import ExperimentResult, ItemResult
from assay.evaluators.trajectory import (
    Step,
    goal_completion,
    no_loops,
    no_tool_errors,
    run_input,
    step_budget,
)

__all__ = [
    "CollectorError",
    "Comparison",
    "Dataset",
    "DatasetItem",
    "EvalInput",
    "Evaluator",
    "ExperimentResult",
    "FunctionEvaluator",
    "ItemResult",
    "JudgeAnswerError",
    "OpenAIJudge",
    "RunNotRecorded",
    "Score",
    "Step",
    "UnknownEvaluatorError",
    "aevaluate",
    "answer_relevance",
    "bleu",
    "compare",
    "contains",
    "contains_all",
    "contains_any",
    "context_relevance",
    "correctness",
    "cost_budget",
    "evaluate",
    "evaluator",
    "exact_match",
    "faithfulness",
    "get_evaluator",
    "goal_completion",
    "json_schema",
    "json_valid",
    "latency_budget",
    "length",
    "levenshtein",
    "no_loops",
    "no_pii",
    "no_refusal",
    "no_tool_errors",
    "no_toxicity",
    "pii",
    "refusal",
    "refuses",
    "regex",
    "registered",
    "rouge_l",
    "rubric",
    "run_input",
    "step_budget",
    "token_f1",
    "toxicity",
]
