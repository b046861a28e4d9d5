"""Rules compiled to evaluators once, at start-up (a typo fails there, not at the first call),
and the per-trace sampling every level shares."""

from __future__ import annotations

import hashlib
import importlib

from assay.collector.evaluation.config import EvaluationConfig, EvaluatorSpec, Rule
from assay.evaluators import Evaluator, get_evaluator


def resolve(spec: EvaluatorSpec) -> Evaluator:
    """The evaluator a rule entry names, with its options."""
    if isinstance(spec, str):
        return get_evaluator(spec)
    ((name, options),) = spec.items()
    return get_evaluator(name, **(options or {}))


class RulesError(ValueError):
    """The `evaluation:` section names an evaluator, option or module that does not work."""


# Each rule, with its index (the sampling salt) and its evaluators resolved.
CompiledRules = list[tuple[int, Rule, list[Evaluator]]]


def compile_rules(config: EvaluationConfig) -> CompiledRules:
    """Each rule with its evaluators resolved; raises RulesError saying what is wrong.

    Called at start-up, so a typo in assay.yaml fails there, not at the first call."""
    try:
        for module in config.modules:
            importlib.import_module(module)  # registers the user's @evaluator functions
        return [
            (index, rule, [resolve(spec) for spec in rule.evaluators])
            for index, rule in enumerate(config.rules)
        ]
    except (ImportError, LookupError, TypeError, ValueError) as exc:
        raise RulesError(f"evaluation: {exc}") from exc


def sampled(trace_id: str, rate: float, salt: int) -> bool:
    """Consistent per trace: every call of a sampled trace is evaluated by the rule."""
    if rate >= 1.0:
        return True
    if rate <= 0.0:
        return False
    digest = hashlib.blake2b(f"{salt}:{trace_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < rate
