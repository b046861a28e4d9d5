"""The evaluator model: `EvalInput` in, `Score` out, `Evaluator` and the `@evaluator` decorator.

An evaluator is a named, versioned async callable. `Evaluator.__call__` is the one place
that times a run, turns an exception into an error score, converts a float, a bool or a
`Score` result, and applies the threshold, so every evaluator (preset, judge or user
function) behaves the same online in the collector and offline in an experiment.

Error scores: value 0.0, `passed` None, `error` = "ExcType: message". `passed` stays None
(not False) because an evaluator that could not judge has not seen a bad answer; pass
rates count only the calls that were judged, and errors are counted apart.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import json
import math
import numbers
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from time import perf_counter
from types import ModuleType
from typing import Any, TypeAlias, cast, overload

__all__ = [
    "CALL_COLUMNS_READ",
    "DIRECTIONS",
    "EVAL_INPUT_FIELDS",
    "HIGHER_IS_BETTER",
    "LOWER_IS_BETTER",
    "EvalInput",
    "Evaluator",
    "FunctionEvaluator",
    "Score",
    "evaluator",
    "message_text",
]

# The most characters of an exception message kept in `Score.error`.
_MAX_ERROR_CHARS = 2000
# Floating-point noise above 1 or below 0 (e.g. 1.0000000000000002) is clamped, not refused.
_TOLERANCE = 1e-9

# A score's direction, stored with it: which end of [0, 1] is the good one. Every built-in
# evaluator is higher-is-better; a user's own may declare `higher_is_better=False`.
HIGHER_IS_BETTER = "higher_is_better"
LOWER_IS_BETTER = "lower_is_better"
DIRECTIONS = (HIGHER_IS_BETTER, LOWER_IS_BETTER)

Messages: TypeAlias = list[dict[str, Any]]
EvalResult: TypeAlias = "Score | float | bool"


def message_text(message: Mapping[str, Any]) -> str:
    """The text of one chat message, in the OpenAI shape or the OTel GenAI parts shape.

    OpenAI: `content` is a string or a list of `{"type": "text", "text": ...}` parts.
    GenAI conventions: `parts` is a list of `{"type": "text", "content": ...}`. Parts that
    are not text (images, tool calls) are skipped; a `refusal` part counts as text since it
    is what the model said.
    """
    content = message.get("content")
    if isinstance(content, str):
        return content
    parts = content if isinstance(content, list) else message.get("parts")
    if not isinstance(parts, list):
        return ""
    texts = []
    for part in parts:
        if isinstance(part, str):
            texts.append(part)
        elif isinstance(part, Mapping) and part.get("type", "text") in ("text", "refusal"):
            text = part.get("content", part.get("text"))
            if isinstance(text, str):
                texts.append(text)
    return "\n".join(texts)


def _json_list(value: Any) -> list[Any]:
    """A JSON array column as a list; text that is not a JSON array gives []."""
    if isinstance(value, list):
        return value
    if not isinstance(value, str | bytes) or not value:
        return []
    try:
        loaded = json.loads(value)
    except ValueError:
        return []
    return loaded if isinstance(loaded, list) else []


# `llm_calls` columns copied into `EvalInput.metadata` by `from_llm_call`.
_METADATA_COLUMNS = (
    "trace_id",
    "span_id",
    "service_name",
    "operation",
    "provider",
    "request_model",
    "response_model",
    "status",
    "finish_reasons",
    "user_id",
    "session_id",
    "prompt_name",
    "prompt_version",
    "tags",
    "experiment_id",
    "dataset_item_id",
    "input_tokens",
    "output_tokens",
)

# Every `llm_calls` column `from_llm_call` reads: a caller holding a whole row may pass only these.
CALL_COLUMNS_READ = (
    "system_instructions",
    "input_messages",
    "output_messages",
    *_METADATA_COLUMNS,  # with response_model and request_model
    "model",
    "duration_ms",
    "cost_usd",
)


@dataclass(kw_only=True)
class EvalInput:
    """What an evaluator sees: one LLM call, or one dataset item with the model's output.

    `input` is the prompt as text or as chat messages (`[{"role": ..., "content": ...}]`);
    `context` is the retrieved context (RAG) as one text or several passages.
    `duration_ms`, `cost_usd` and `model` describe the call, for the budget evaluators;
    `cost_lower_bound`: `cost_usd` leaves out calls without a price that did not fail (an
    experiment item's task made some), so the true cost may be more.
    """

    output: str
    input: str | Messages = ""
    expected: str | None = None
    context: list[str] | str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    duration_ms: float | None = None
    cost_usd: float | None = None
    model: str = ""
    cost_lower_bound: bool = False

    @property
    def input_text(self) -> str:
        """The input as one text: a single message's text, else one `role: text` line each."""
        if isinstance(self.input, str):
            return self.input
        texts = [(str(m.get("role", "")), message_text(m)) for m in self.input]
        if len(texts) == 1:
            return texts[0][1]
        return "\n".join(f"{role}: {text}" if role else text for role, text in texts)

    @property
    def question(self) -> str:
        """The text of the last user message (the whole input when it is plain text)."""
        if isinstance(self.input, str):
            return self.input
        for message in reversed(self.input):
            if message.get("role") == "user":
                return message_text(message)
        return self.input_text

    @property
    def contexts(self) -> list[str]:
        """The retrieved context as a list of passages (empty when there is none)."""
        if self.context is None:
            return []
        if isinstance(self.context, str):
            return [self.context] if self.context else []
        return [str(passage) for passage in self.context]

    @classmethod
    def from_llm_call(cls, row: Mapping[str, Any], *, with_input: bool = True) -> EvalInput:
        """Build one from an `assay.llm_calls` row (column name → value).

        `input_messages` / `output_messages` are JSON text in the GenAI message shape; their
        text parts become `input` (chat messages, the system instructions first) and `output`
        (the first choice). Malformed JSON gives empty text rather than an exception: a row
        stored without content (`ASSAY_CAPTURE_CONTENT=false`) is still a row. Keys that are
        not columns, `expected`, `context` and `metadata`, are taken when present, so an
        experiment can pass a call row with its dataset item's fields. `with_input=False`
        leaves `input` empty, for evaluators that do not read it (`Evaluator.reads_input`):
        the prompt is most of a call's text.
        """
        messages = _input_messages(row) if with_input else []
        output = ""
        for message in _json_list(row.get("output_messages")):
            if isinstance(message, Mapping):
                output = message_text(message)
                break
        metadata = {key: row[key] for key in _METADATA_COLUMNS if key in row}
        extra = row.get("metadata")
        if isinstance(extra, Mapping):
            metadata.update(extra)
        model = row.get("model") or row.get("response_model") or row.get("request_model") or ""
        duration = row.get("duration_ms")
        cost = row.get("cost_usd")
        return cls(
            input=messages,
            output=output,
            expected=row.get("expected"),
            context=row.get("context"),
            metadata=metadata,
            duration_ms=float(duration) if duration is not None else None,
            cost_usd=float(cost) if cost is not None else None,
            model=str(model),
        )


def _input_messages(row: Mapping[str, Any]) -> Messages:
    """The chat messages of an `llm_calls` row: its system instructions, then its input."""
    messages: Messages = []
    system = "\n".join(
        text
        for part in _json_list(row.get("system_instructions"))
        if (text := message_text({"parts": [part]}) if isinstance(part, Mapping) else "")
    )
    if system:
        messages.append({"role": "system", "content": system})
    for message in _json_list(row.get("input_messages")):
        if isinstance(message, Mapping):
            text = message_text(message)
            if text:
                messages.append({"role": str(message.get("role") or "user"), "content": text})
    return messages


# The names a user function may take as keyword arguments: the fields of EvalInput.
EVAL_INPUT_FIELDS = frozenset(
    ("output", "input", "expected", "context", "metadata", "duration_ms", "cost_usd", "model")
)


@dataclass(kw_only=True)
class Score:
    """One evaluation result: the evaluator-side columns of the `scores` table.

    `value` is in [0, 1]; NaN and values outside are refused with ValueError (an evaluator
    that returns 1.3 has a bug, and its score says so). `passed` is None when there is no
    threshold or the evaluation failed. `input_tokens`/`output_tokens` are a judge's own usage.
    `direction` says which end is good (`HIGHER_IS_BETTER` unless the evaluator declared
    otherwise); the evaluator sets it.
    """

    name: str = ""
    value: float
    label: str = ""
    passed: bool | None = None
    explanation: str = ""
    evaluator_version: str = ""
    cost_usd: float | None = None
    duration_ms: float | None = None
    error: str = ""
    input_tokens: int | None = None
    output_tokens: int | None = None
    direction: str = HIGHER_IS_BETTER

    def __post_init__(self) -> None:
        self.value = _unit_interval(self.value)
        if self.direction not in DIRECTIONS:
            raise ValueError(f"a score's direction is one of {DIRECTIONS}, not {self.direction!r}")

    @classmethod
    def failure(cls, error: BaseException | str, **fields: Any) -> Score:
        """An error score: value 0, `passed` None, `error` = "ExcType: message"."""
        text = error if isinstance(error, str) else _error_text(error)
        return cls(value=0.0, passed=None, error=text, **fields)


def _unit_interval(value: Any) -> float:
    # A float within [0, 1] is most of what evaluators give: no ABC check for it (NaN fails
    # the comparison and takes the long way).
    if value.__class__ is float and 0.0 <= value <= 1.0:
        return value
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if not isinstance(value, numbers.Real):
        raise TypeError(f"a score value must be a number, not {type(value).__name__}")
    number = float(value)
    if math.isnan(number):
        raise ValueError("a score value cannot be NaN")
    if not -_TOLERANCE <= number <= 1 + _TOLERANCE:
        raise ValueError(f"a score value must be in [0, 1], got {number!r}")
    return min(max(number, 0.0), 1.0)


def _error_text(error: BaseException) -> str:
    text = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    return text if len(text) <= _MAX_ERROR_CHARS else text[: _MAX_ERROR_CHARS - 1] + "…"


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _source_of(obj: Callable[..., Any] | ModuleType) -> str:
    """The source text of a function or module; its bytecode when the source is not on disk."""
    try:
        return inspect.getsource(obj)
    except (OSError, TypeError):
        code = getattr(obj, "__code__", None)
        if code is None:
            return getattr(obj, "__qualname__", getattr(obj, "__name__", repr(obj)))
        return repr((code.co_code, code.co_consts, code.co_names))


def _config_text(config: Mapping[str, Any]) -> str:
    # Sorted JSON: the same configuration always hashes the same, whatever the key order.
    return json.dumps(config, sort_keys=True, default=repr)


class Evaluator:
    """A named, versioned async evaluator; subclasses implement `evaluate`.

    `threshold` sets `passed` on scores that come back without it: `value >= threshold`,
    or `value <= threshold` for an evaluator that declares `higher_is_better=False` (a
    user's detector whose value is how much of a bad thing it found; every built-in is
    higher-is-better, and its scores carry that `direction`). Without a threshold,
    `passed` is None unless the evaluator decides it (a bool result is its own verdict).
    `version` is the explicit one, else a short hash of `fingerprint()` (code and config),
    so a changed evaluator records its scores under a new version.
    """

    # False for evaluators that judge the call's figures (latency, cost), not its output:
    # online evaluation then runs them on calls stored without content too.
    reads_output: bool = True
    # False for evaluators that never read `input` (the prompt): online evaluation then does not
    # parse it from the stored call for them.
    reads_input: bool = True

    @property
    def runs_inline(self) -> bool:
        """True when evaluating never waits (cheap synchronous code): callers may run it
        without a task or a concurrency limit."""
        return False

    def __init__(
        self,
        name: str,
        *,
        version: str | None = None,
        threshold: float | None = None,
        higher_is_better: bool = True,
        description: str = "",
    ) -> None:
        if not name:
            raise ValueError("an evaluator needs a name")
        if threshold is not None:
            threshold = _unit_interval(threshold)
        self.name = name
        self.threshold = threshold
        self.higher_is_better = higher_is_better
        self.description = description
        self._version = version

    @property
    def direction(self) -> str:
        """`HIGHER_IS_BETTER` or `LOWER_IS_BETTER`, stored with every score it gives."""
        return HIGHER_IS_BETTER if self.higher_is_better else LOWER_IS_BETTER

    @property
    def version(self) -> str:
        # Computed on first use: hashing source reads files, which evaluator construction
        # at import time (the registry's defaults) should not do.
        if self._version is None:
            self._version = _short_hash(self.fingerprint())
        return self._version

    def fingerprint(self) -> str:
        """What identifies this evaluator's behaviour: its class's code and its settings."""
        cls = type(self)
        module = sys.modules.get(cls.__module__)
        code = _source_of(module) if module is not None else cls.__qualname__
        return "\n".join((code, cls.__qualname__, _config_text(self._settings())))

    def _settings(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "threshold": self.threshold,
            "higher_is_better": self.higher_is_better,
        }

    async def evaluate(self, data: EvalInput) -> EvalResult:
        """The evaluation itself: a float in [0, 1], a bool (the verdict) or a `Score`."""
        raise NotImplementedError

    async def __call__(self, data: EvalInput | None = None, /, **fields: Any) -> Score:
        """Evaluate `data` (or `EvalInput(**fields)`); never raises for the evaluator's faults."""
        if data is None:
            data = EvalInput(**fields)
        elif fields:
            data = replace(data, **fields)
        started = perf_counter()
        try:
            result = await self.evaluate(data)
            score = self._to_score(result)
        except Exception as exc:  # the evaluator's bug becomes its score, never the caller's
            score = Score.failure(exc)
        return self._stamped(score, started)

    def score_now(self, data: EvalInput) -> Score:
        """What `await self(data)` gives, without a coroutine: for an evaluator that
        `runs_inline` (online evaluation runs thousands a second of those)."""
        if not self.runs_inline:
            raise TypeError(f"evaluator {self.name!r} does not run inline: await it")
        started = perf_counter()
        try:
            score = self._to_score(self._evaluate_inline(data))
        except Exception as exc:
            score = Score.failure(exc)
        return self._stamped(score, started)

    def _evaluate_inline(self, data: EvalInput) -> EvalResult:
        """`evaluate` of an evaluator that `runs_inline`, called directly."""
        raise NotImplementedError

    def _stamped(self, score: Score, started: float) -> Score:
        """A copy of `score` with this evaluator's name, version, direction and the time since
        `started` (the evaluator's own Score object is never changed)."""
        # `dataclasses.replace` without its cost (a third of an inline evaluation's): the
        # fields were checked when `score` was made, and the direction is a valid one. A copy
        # of the dict given to the new object, rather than the new object's own (empty) dict
        # filled: 9,600 -> 5,100 instructions.
        fields = score.__dict__.copy()
        fields["name"] = self.name
        fields["evaluator_version"] = self.version
        fields["duration_ms"] = (perf_counter() - started) * 1000.0
        fields["direction"] = self.direction
        stamped = object.__new__(Score)
        stamped.__dict__ = fields
        return stamped

    def _to_score(self, result: Any) -> Score:
        if isinstance(result, Score):
            score = result
        elif isinstance(result, Evaluator):
            raise TypeError(
                f"evaluator {self.name!r} returned an evaluator ({result.name!r}) instead of a "
                "score: is it a preset factory passed without calling it?"
            )
        elif isinstance(result, bool):
            return Score(value=1.0 if result else 0.0, passed=result)
        elif isinstance(result, numbers.Real):
            score = Score(value=result)  # type: ignore[arg-type]
        else:
            raise TypeError(
                f"evaluator {self.name!r} returned {type(result).__name__}; "
                "expected a float, a bool or a Score"
            )
        if score.passed is None and not score.error and self.threshold is not None:
            if self.higher_is_better:
                passed = score.value >= self.threshold
            else:
                passed = score.value <= self.threshold
            score = replace(score, passed=passed)
        return score

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} version={self._version or '…'}>"


UserFunction: TypeAlias = Callable[..., "EvalResult | Awaitable[EvalResult]"]


class FunctionEvaluator(Evaluator):
    """An evaluator made of a function: the user's (through `@evaluator`) or a preset's.

    The function takes the `EvalInput` (a single parameter named other than a field, or
    annotated `EvalInput`) or `EvalInput` fields as keyword arguments by name; the choice
    is made once, here. A sync function runs in a worker thread (`asyncio.to_thread`) so
    that it cannot stall the event loop, unless `run_in_thread=False` says it is cheap
    (the heuristic presets: a thread hop would cost more than they do).
    """

    def __init__(
        self,
        fn: UserFunction,
        *,
        name: str | None = None,
        version: str | None = None,
        threshold: float | None = None,
        higher_is_better: bool = True,
        description: str | None = None,
        run_in_thread: bool = True,
        config: Mapping[str, Any] | None = None,
        source: Callable[..., Any] | ModuleType | None = None,
    ) -> None:
        super().__init__(
            name or fn.__name__,
            version=version,
            threshold=threshold,
            higher_is_better=higher_is_better,
            description=description if description is not None else _first_line(fn.__doc__),
        )
        self.fn = fn
        self.config = dict(config or {})
        self._source = source if source is not None else fn
        self._is_async = inspect.iscoroutinefunction(fn)
        self._run_in_thread = run_in_thread and not self._is_async
        self._fields = _arguments_of(fn)
        if self._fields is not None:  # takes fields by name: reads only those
            self.reads_input = "input" in self._fields

    @property
    def runs_inline(self) -> bool:
        return not self._is_async and not self._run_in_thread

    def fingerprint(self) -> str:
        return "\n".join((_source_of(self._source), _config_text(self._settings())))

    def _settings(self) -> dict[str, Any]:
        return {**super()._settings(), "config": self.config}

    def _arguments(self, data: EvalInput) -> tuple[tuple[Any, ...], dict[str, Any]]:
        if self._fields is None:
            return (data,), {}
        return (), {name: getattr(data, name) for name in self._fields}

    async def evaluate(self, data: EvalInput) -> EvalResult:
        args, kwargs = self._arguments(data)
        fn: Callable[..., Any] = self.fn
        if self._is_async:
            result = await fn(*args, **kwargs)
        elif self._run_in_thread:
            result = await asyncio.to_thread(fn, *args, **kwargs)
        else:
            result = fn(*args, **kwargs)
        if inspect.isawaitable(result):  # a sync function that returned a coroutine
            result = await result
        return cast(EvalResult, result)

    def _evaluate_inline(self, data: EvalInput) -> EvalResult:
        if self._fields is None:
            result = self.fn(data)
        else:
            args, kwargs = self._arguments(data)
            result = self.fn(*args, **kwargs)
        if result.__class__ not in _PLAIN_RESULTS and inspect.isawaitable(result):
            close = getattr(result, "close", None)
            if close is not None:
                close()
            # nothing inline can wait for it
            raise TypeError(f"evaluator {self.name!r} returned an awaitable from a sync function")
        return cast(EvalResult, result)


# What evaluators return, none of them awaitable (the check for one is an ABC's, ~1 µs).
_PLAIN_RESULTS = frozenset((Score, float, bool, int))


def _first_line(doc: str | None) -> str:
    return doc.strip().splitlines()[0] if doc and doc.strip() else ""


def _arguments_of(fn: Callable[..., Any]) -> Sequence[str] | None:
    """None: call `fn(eval_input)`; else the EvalInput fields to pass by keyword."""
    parameters = list(inspect.signature(fn).parameters.values())
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return sorted(EVAL_INPUT_FIELDS)
    wants_input = [p for p in parameters if _annotated_eval_input(p.annotation)]
    if len(parameters) == 1 and (wants_input or parameters[0].name not in EVAL_INPUT_FIELDS):
        if parameters[0].kind is parameters[0].KEYWORD_ONLY:
            raise TypeError(f"{fn.__qualname__}: the EvalInput parameter must be positional")
        return None
    unknown = [
        p.name
        for p in parameters
        if p.name not in EVAL_INPUT_FIELDS
        and p.default is p.empty
        and p.kind is not p.VAR_POSITIONAL
    ]
    if unknown or wants_input:
        raise TypeError(
            f"{fn.__qualname__} takes {', '.join(unknown or [p.name for p in wants_input])}: "
            "an evaluator function takes one EvalInput, or keyword arguments named after its "
            f"fields ({', '.join(sorted(EVAL_INPUT_FIELDS))})"
        )
    return [
        p.name
        for p in parameters
        if p.name in EVAL_INPUT_FIELDS and p.kind is not p.POSITIONAL_ONLY
    ]


def _annotated_eval_input(annotation: Any) -> bool:
    if annotation is EvalInput:
        return True
    # `from __future__ import annotations` leaves the annotation as a string.
    return isinstance(annotation, str) and annotation.rsplit(".", 1)[-1] == "EvalInput"


@overload
def evaluator(fn: UserFunction, /) -> FunctionEvaluator: ...


@overload
def evaluator(
    *,
    name: str | None = None,
    threshold: float | None = None,
    version: str | None = None,
    higher_is_better: bool = True,
    description: str | None = None,
) -> Callable[[UserFunction], FunctionEvaluator]: ...


def evaluator(
    fn: UserFunction | None = None,
    /,
    *,
    name: str | None = None,
    threshold: float | None = None,
    version: str | None = None,
    higher_is_better: bool = True,
    description: str | None = None,
) -> FunctionEvaluator | Callable[[UserFunction], FunctionEvaluator]:
    """Make a function an evaluator and register it by name (`get_evaluator(name)`).

    ::

        @evaluator(name="mentions_refund", threshold=1.0)
        def mentions_refund(output: str) -> bool:
            return "refund" in output.lower()

    The function, sync or async, returns a float in [0, 1], a bool or a `Score`, and takes
    the `EvalInput` or its fields by name (`output`, `expected`, `input`, `context`,
    `metadata`, ...). The result is an `Evaluator`: `await mentions_refund(EvalInput(...))`.
    Registering a name again replaces the earlier evaluator (a reloaded module does that).
    """

    def decorate(function: UserFunction) -> FunctionEvaluator:
        from assay.evaluators.registry import register

        made = FunctionEvaluator(
            function,
            name=name,
            version=version,
            threshold=threshold,
            higher_is_better=higher_is_better,
            description=description,
        )
        # Typed Any: checked by path (`mypy evaluators`), this module and the registry's
        # `assay.evaluators.base` are two modules to mypy.
        register(cast(Any, made))
        return made

    return decorate(fn) if fn is not None else decorate
