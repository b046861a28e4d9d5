"""The `evaluation:` section of assay.yaml: rules (which calls or runs, which evaluators, what
share), and the queue's limits; checked when the file is loaded."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, field_validator, model_validator

from assay.collector.schema import LlmCallRow

# `where:` keys → the llm_calls fields they filter on
FILTER_FIELDS = {
    "service": ("service_name",),
    "model": ("model", "request_model"),
    "provider": ("provider",),
    "prompt_name": ("prompt_name",),
    "prompt_version": ("prompt_version",),
    "operation": ("operation",),
    "status": ("status",),
}
# `where:` keys of trace- and session-level rules → the trace_summary columns they filter on
RUN_FILTER_FIELDS = {
    "service": "service_name",
    "agent": "agent_name",
    "status": "status",
    "prompt_name": "prompt_name",
    "prompt_version": "prompt_version",
}
LEVELS = ("call", "trace", "session")


# An evaluator in a rule: a name, or `{name: {option: value}}` for a configured preset.
EvaluatorSpec = str | dict[str, dict[str, Any]]


class Rule(BaseModel):
    """Which evaluators run on which calls (or, at `level` trace or session, on which whole runs
    and conversations once they are complete: collector/evaluation/runs.py), on what share of
    traces."""

    evaluators: list[EvaluatorSpec] = Field(min_length=1)
    level: Literal["call", "trace", "session"] = "call"
    where: dict[str, str | list[str]] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)  # the call must carry all of them
    sample: float = Field(default=1.0, ge=0.0, le=1.0)

    @field_validator("where")
    @classmethod
    def _known_filters(cls, where: dict[str, str | list[str]]) -> dict[str, str | list[str]]:
        unknown = sorted(set(where) - set(FILTER_FIELDS) - {"tags"})
        if unknown:
            raise ValueError(f"unknown filter(s) {unknown}; use {sorted(FILTER_FIELDS)} or tags")
        return where

    @model_validator(mode="after")
    def _filters_of_the_level(self) -> Rule:
        if self.level != "call":
            unknown = sorted(set(self.where) - set(RUN_FILTER_FIELDS))
            if unknown or self.tags:
                raise ValueError(
                    f"a {self.level}-level rule filters on {sorted(RUN_FILTER_FIELDS)}, "
                    f"not {unknown or ['tags']}"
                )
        return self

    @field_validator("evaluators")
    @classmethod
    def _one_name_each(cls, specs: list[EvaluatorSpec]) -> list[EvaluatorSpec]:
        for spec in specs:
            if isinstance(spec, dict) and len(spec) != 1:
                raise ValueError(f"{spec}: write one evaluator per entry, {{name: {{options}}}}")
        return specs

    def matches(self, call: LlmCallRow) -> bool:
        for key, wanted in self.where.items():
            values = [wanted] if isinstance(wanted, str) else wanted
            if key == "tags":
                if not set(values) <= set(call.tags):
                    return False
            elif not any(getattr(call, f) in values for f in FILTER_FIELDS[key]):
                return False
        return set(self.tags) <= set(call.tags)

    def sql_filter(self, params: dict[str, Any]) -> str:
        """`matches` as a condition on `llm_calls` columns, for reading calls back from the store;
        its values are bound in `params` under names not taken there yet."""

        def bound(values: list[str]) -> str:
            name = f"where_{len(params)}"
            params[name] = values
            return f"{{{name}:Array(String)}}"

        terms = []
        for key, wanted in self.where.items():
            values = [wanted] if isinstance(wanted, str) else list(wanted)
            if key == "tags":
                terms.append(f"hasAll(tags, {bound(values)})")
            else:
                either = " OR ".join(f"{f} IN {bound(values)}" for f in FILTER_FIELDS[key])
                terms.append(f"({either})")
        if self.tags:
            terms.append(f"hasAll(tags, {bound(list(self.tags))})")
        return " AND ".join(terms) or "1"


class EvaluationConfig(BaseModel):
    rules: list[Rule] = Field(default_factory=list)
    modules: list[str] = Field(default_factory=list)  # imported first: users' own evaluators
    queue_size: int = Field(default=10_000, gt=0)
    concurrency: int = Field(default=8, gt=0)  # per evaluator
    limits: dict[str, int] = Field(default_factory=dict)  # per-evaluator concurrency overrides
    max_in_flight: int = Field(default=256, gt=0)  # evaluations running at once, all evaluators
    # The most of one core the evaluation thread may use: ingest shares the process (and its
    # GIL), so evaluation yields past this share and the queue drops what it cannot reach. An
    # eighth of a core: 6,400-7,100 heuristic evaluations/s, ingest 9 % slower; a tenth gave
    # 4,600 (docs/capacity.md, "Online evaluation").
    cpu_share: float = Field(default=0.125, gt=0, le=1)
    log_interval: float = Field(default=60.0, gt=0)  # seconds between progress lines in the log
    # Scores are inserted every `flush_interval` s, or sooner when `batch_scores` wait: an
    # insert into `scores` (and its view) costs tens of ms whatever its size, so few and big.
    batch_scores: int = Field(default=10_000, gt=0)
    flush_interval: float = Field(default=2.0, gt=0)
    # Trace- and session-level rules: a run is complete when its root span has arrived and no
    # span of it for `run_quiet_period` s; a conversation after `session_inactivity` s without
    # a span. Completed runs are looked for every `run_poll_interval` s, from `run_lookback` s
    # back at start-up (runs that went quiet while the collector was down are judged then).
    run_quiet_period: float = Field(default=30.0, ge=0)
    session_inactivity: float = Field(default=1800.0, ge=0)
    run_poll_interval: float = Field(default=5.0, gt=0)
    run_lookback: float = Field(default=3600.0, ge=0)
    # At start-up, the calls of the last `call_lookback` s that have no online score are offered
    # again: the evaluations a crash lost, or a stop out of time dropped (0: none).
    call_lookback: float = Field(default=900.0, ge=0)


def load_evaluation_config(config_file: Path | None) -> EvaluationConfig:
    """The `evaluation:` section of assay.yaml (none: online evaluation is off)."""
    if config_file is None:
        return EvaluationConfig()
    loaded = yaml.safe_load(config_file.read_text()) or {}
    try:
        return EvaluationConfig.model_validate(loaded.get("evaluation") or {})
    except ValueError as exc:
        raise ValueError(f"{config_file}: evaluation: {exc}") from exc
