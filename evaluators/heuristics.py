"""Heuristic evaluator presets: matching, JSON, length, similarity, refusal, PII, budgets.

Pure Python (plus `jsonschema` for `json_schema`, imported when one is built) and cheap
enough for the collector to run thousands a second: regular expressions are compiled at
import; the similarity algorithms are in `similarity`, the PII finder in `pii`. Presets run
inline on the event loop (`run_in_thread=False`), since a thread hop would cost more.

Every preset is a factory returning an `Evaluator`; those whose parameters all have
defaults are also available by name (`get_evaluator("rouge_l")`). Every preset scores higher
for a better output, and `passed` agrees (`no_pii` is 1 when no PII is found). Similarity
metrics have no threshold unless given one, so their `passed` is None by default.
"""

from __future__ import annotations

import json
import re
import sys
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

from assay.evaluators.base import EvalInput, FunctionEvaluator, Score
from assay.evaluators.formatting import duration_ms, money
from assay.evaluators.pii import PII_KINDS, pii_findings
from assay.evaluators.registry import preset, renamed
from assay.evaluators.similarity import (
    ARTICLES,
    Smoothing,
    levenshtein_distance,
    rouge_l_score,
    sentence_bleu,
    token_f1_score,
)

__all__ = [
    "bleu",
    "contains",
    "contains_all",
    "contains_any",
    "cost_budget",
    "exact_match",
    "json_schema",
    "json_valid",
    "latency_budget",
    "length",
    "levenshtein",
    "no_pii",
    "no_refusal",
    "pii",
    "refusal",
    "refuses",
    "regex",
    "rouge_l",
    "token_f1",
]

_MODULE = sys.modules[__name__]


def _figures_only(evaluator: FunctionEvaluator) -> FunctionEvaluator:
    evaluator.reads_output = False
    return evaluator


def _make(
    fn: Callable[[EvalInput], Score | float | bool],
    name: str,
    *,
    threshold: float | None = None,
    higher_is_better: bool = True,
    reads_input: bool = False,
    description: str,
    **config: Any,
) -> FunctionEvaluator:
    # The version hashes this module's source and the configuration: editing any preset
    # re-versions them all, which errs on the safe side of "a changed evaluator".
    made = FunctionEvaluator(
        fn,
        name=name,
        threshold=threshold,
        higher_is_better=higher_is_better,
        description=description,
        run_in_thread=False,
        config={"preset": fn.__qualname__.split(".")[0], **config},
        source=_MODULE,
    )
    # The presets read the output (and the expected output, the figures); those that read the
    # input say so, which spares online evaluation parsing the prompt for the others.
    made.reads_input = reads_input
    return made


def _expected(data: EvalInput, evaluator: str) -> str:
    if data.expected is None:
        raise ValueError(f"{evaluator} compares with an expected output, and this input has none")
    return data.expected


# --- text normalisation -----------------------------------------------------------------------

_WHITESPACE = re.compile(r"\s+")
# Everything that is neither a word character nor whitespace, and the underscore: Unicode
# punctuation and symbols alike.
_PUNCTUATION = re.compile(r"[^\w\s]|_")


def _normalizer(
    *,
    ignore_case: bool,
    ignore_punctuation: bool,
    ignore_articles: bool,
    normalize_whitespace: bool,
) -> Callable[[str], str]:
    def normalize(text: str) -> str:
        # NFC always: a composed and a decomposed "é" are the same text to a reader.
        text = unicodedata.normalize("NFC", text)
        if ignore_case:
            text = text.casefold()
        if ignore_punctuation:
            text = _PUNCTUATION.sub(" " if normalize_whitespace else "", text)
        if ignore_articles:
            text = ARTICLES.sub(" ", text)
        if normalize_whitespace:
            text = " ".join(text.split())
        return text

    return normalize


# --- exact match, contains, regex --------------------------------------------------------------


@preset
def exact_match(
    *,
    ignore_case: bool = False,
    ignore_punctuation: bool = False,
    ignore_articles: bool = False,
    normalize_whitespace: bool = True,
    name: str = "exact_match",
) -> FunctionEvaluator:
    """The output equals the expected output, after the chosen normalisation.

    `normalize_whitespace` (on by default) strips both ends and collapses runs of
    whitespace, so a trailing newline is not a mismatch; the SQuAD "exact match" metric is
    `ignore_case=True, ignore_punctuation=True, ignore_articles=True`.
    """
    normalize = _normalizer(
        ignore_case=ignore_case,
        ignore_punctuation=ignore_punctuation,
        ignore_articles=ignore_articles,
        normalize_whitespace=normalize_whitespace,
    )

    def run(data: EvalInput) -> Score:
        matched = normalize(data.output) == normalize(_expected(data, name))
        return Score(
            value=float(matched),
            passed=matched,
            explanation="" if matched else "the output differs from the expected output",
        )

    return _make(
        run,
        name,
        description="the output equals the expected output",
        ignore_case=ignore_case,
        ignore_punctuation=ignore_punctuation,
        ignore_articles=ignore_articles,
        normalize_whitespace=normalize_whitespace,
    )


def _fold(text: str, ignore_case: bool) -> str:
    # NFC as in exact_match: a composed and a decomposed "é" are the same text to a reader.
    text = unicodedata.normalize("NFC", text)
    return text.casefold() if ignore_case else text


def _needle(text: str, evaluator: str) -> str:
    if not text:  # every output contains "": it would pass any answer
        raise ValueError(f"{evaluator} has an empty text to look for")
    return text


@preset
def contains(
    text: str | None = None, *, ignore_case: bool = False, name: str = "contains"
) -> FunctionEvaluator:
    """The output contains `text`; without `text`, it contains the expected output."""

    if text is not None:
        _needle(text, name)

    def run(data: EvalInput) -> bool:
        needle = _needle(text if text is not None else _expected(data, name), name)
        return _fold(needle, ignore_case) in _fold(data.output, ignore_case)

    return _make(
        run, name, description="the output contains a text", text=text, ignore_case=ignore_case
    )


def _needles(texts: Iterable[str], evaluator: str) -> tuple[str, ...]:
    if isinstance(texts, str):
        raise TypeError(f"{evaluator} takes a list of texts, not one string")
    needles = tuple(_needle(text, evaluator) for text in texts)
    if not needles:
        raise ValueError(f"{evaluator} needs at least one text to look for")
    return needles


@preset
def contains_all(
    texts: Iterable[str], *, ignore_case: bool = False, name: str = "contains_all"
) -> FunctionEvaluator:
    """The output contains every one of `texts`; the value is the share found (partial credit).

    `passed` is True only when all are found.
    """
    needles = _needles(texts, "contains_all")
    folded = [_fold(n, ignore_case) for n in needles]

    def run(data: EvalInput) -> Score:
        output = _fold(data.output, ignore_case)
        missing = [n for n, f in zip(needles, folded, strict=True) if f not in output]
        return Score(
            value=(len(needles) - len(missing)) / len(needles),
            passed=not missing,
            explanation=f"missing: {', '.join(map(repr, missing))}" if missing else "",
        )

    return _make(
        run,
        name,
        description="the output contains all of the texts",
        texts=list(needles),
        ignore_case=ignore_case,
    )


@preset
def contains_any(
    texts: Iterable[str], *, ignore_case: bool = False, name: str = "contains_any"
) -> FunctionEvaluator:
    """The output contains at least one of `texts`."""
    needles = _needles(texts, "contains_any")
    folded = [_fold(n, ignore_case) for n in needles]

    def run(data: EvalInput) -> Score:
        output = _fold(data.output, ignore_case)
        found = [n for n, f in zip(needles, folded, strict=True) if f in output]
        return Score(
            value=1.0 if found else 0.0,
            passed=bool(found),
            explanation=f"found: {', '.join(map(repr, found))}" if found else "none found",
        )

    return _make(
        run,
        name,
        description="the output contains one of the texts",
        texts=list(needles),
        ignore_case=ignore_case,
    )


@preset
def regex(
    pattern: str | re.Pattern[str],
    *,
    flags: int = 0,
    fullmatch: bool = False,
    name: str = "regex",
) -> FunctionEvaluator:
    """The output matches `pattern` (`re.search`; the whole output with `fullmatch=True`)."""
    compiled = re.compile(pattern, flags) if isinstance(pattern, str) else pattern
    match = compiled.fullmatch if fullmatch else compiled.search

    def run(data: EvalInput) -> Score:
        found = match(data.output)
        # Where it matched, not what: the matched text may be something not to store.
        explanation = f"matched at {found.start()}-{found.end()}" if found else "no match"
        return Score(
            value=float(found is not None), passed=found is not None, explanation=explanation
        )

    return _make(
        run,
        name,
        description="the output matches a regular expression",
        pattern=compiled.pattern,
        flags=compiled.flags,
        fullmatch=fullmatch,
    )


# --- JSON -------------------------------------------------------------------------------------

_CODE_FENCE = re.compile(r"\A\s*```[\w-]*[ \t]*\n(.*?)\n?```\s*\Z", re.DOTALL)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


# What the decoder skips before a value, and the characters a value can begin with (the last
# five: null, true, false, NaN, Infinity); an empty text begins with none of them.
_JSON_WHITESPACE = " \t\n\r"
_JSON_VALUE_STARTS = frozenset('"{[-0123456789ntfNI')
# One decoder: `json.loads` with any option builds a decoder (and its scanner) per call.
_STRICT_JSON = json.JSONDecoder(parse_constant=_reject_constant)


def _parse_json(text: str, strip_code_fence: bool) -> Any:
    """Strict JSON (no NaN or Infinity); raises ValueError with the position of the fault."""
    if strip_code_fence:
        fenced = _CODE_FENCE.match(text)
        if fenced:
            text = fenced.group(1)
    if text.startswith("\ufeff"):  # as json.loads refuses it
        raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
    # Prose (most answers) fails at its first character: the decoder's own error, raised here
    # once instead of through its scanner and two frames (json_valid on a 1,000-character
    # answer: 46,300 -> 40,500 instructions, callgrind).
    start = len(text) - len(text.lstrip(_JSON_WHITESPACE))
    if text[start : start + 1] not in _JSON_VALUE_STARTS:
        raise json.JSONDecodeError("Expecting value", text, start)
    return _STRICT_JSON.decode(text)


@preset
def json_valid(*, strip_code_fence: bool = False, name: str = "json_valid") -> FunctionEvaluator:
    """The output is valid JSON (strict: no NaN or Infinity).

    `strip_code_fence` accepts a JSON text wrapped in one Markdown code fence, as chat
    models like to answer.
    """

    def run(data: EvalInput) -> Score:
        try:
            _parse_json(data.output, strip_code_fence)
        except ValueError as exc:
            return Score(value=0.0, passed=False, explanation=f"invalid JSON: {exc}")
        return Score(value=1.0, passed=True)

    return _make(
        run, name, description="the output is valid JSON", strip_code_fence=strip_code_fence
    )


@preset
def json_schema(
    schema: Mapping[str, Any] | str,
    *,
    strip_code_fence: bool = False,
    name: str = "json_schema",
) -> FunctionEvaluator:
    """The output is JSON that validates against `schema` (any draft `jsonschema` knows).

    The schema itself is checked here, so a broken schema fails at configuration rather
    than as an error score on every call. `format` keywords are asserted.
    """
    try:
        from jsonschema import exceptions as schema_errors
        from jsonschema import validators
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ImportError(
            "json_schema needs the jsonschema package: pip install 'assay[evaluators]'"
        ) from exc
    loaded: Mapping[str, Any] = json.loads(schema) if isinstance(schema, str) else schema
    validator_class = validators.validator_for(loaded)
    validator_class.check_schema(loaded)
    format_checker = getattr(validator_class, "FORMAT_CHECKER", None)
    validator = validator_class(loaded, format_checker=format_checker)

    def run(data: EvalInput) -> Score:
        try:
            document = _parse_json(data.output, strip_code_fence)
        except ValueError as exc:
            return Score(value=0.0, passed=False, explanation=f"invalid JSON: {exc}")
        error = schema_errors.best_match(validator.iter_errors(document))
        if error is None:
            return Score(value=1.0, passed=True)
        where = error.json_path if hasattr(error, "json_path") else "$"
        return Score(value=0.0, passed=False, explanation=f"{where}: {error.message}")

    return _make(
        run,
        name,
        description="the output is JSON valid against a schema",
        schema=loaded,
        strip_code_fence=strip_code_fence,
    )


# --- length -----------------------------------------------------------------------------------


# The whitespace `str.split()` splits ASCII text at (Unicode's, below 128): the rest becomes "x".
_ASCII_WORDS = bytes(
    32 if chr(byte) in " \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f" else 120 for byte in range(256)
)


def _word_count(text: str) -> int:
    """`len(text.split())` without making a string of every word: ASCII text mapped to spaces
    and "x"s counts its words as the " x" pairs (they never overlap), and a first "x" (`length`
    on a 1,000-character answer: 74,700 -> 48,100 instructions, callgrind)."""
    if not text.isascii():
        return len(text.split())
    marks = text.encode("ascii").translate(_ASCII_WORDS)
    return marks.count(b" x") + marks.startswith(b"x")


@preset
def length(
    *,
    min_chars: int | None = None,
    max_chars: int | None = None,
    min_words: int | None = None,
    max_words: int | None = None,
    name: str = "length",
) -> FunctionEvaluator:
    """The output's length (characters and/or whitespace-separated words) is within bounds."""
    bounds = {
        "min_chars": min_chars,
        "max_chars": max_chars,
        "min_words": min_words,
        "max_words": max_words,
    }
    if all(bound is None for bound in bounds.values()):
        raise ValueError("length needs at least one of min_chars, max_chars, min_words, max_words")

    def run(data: EvalInput) -> Score:
        chars = len(data.output)
        words = _word_count(data.output)
        faults = []
        if min_chars is not None and chars < min_chars:
            faults.append(f"fewer than {min_chars} characters")
        if max_chars is not None and chars > max_chars:
            faults.append(f"more than {max_chars} characters")
        if min_words is not None and words < min_words:
            faults.append(f"fewer than {min_words} words")
        if max_words is not None and words > max_words:
            faults.append(f"more than {max_words} words")
        summary = f"{chars} characters, {words} words"
        return Score(
            value=0.0 if faults else 1.0,
            passed=not faults,
            explanation=f"{summary}: {'; '.join(faults)}" if faults else summary,
        )

    return _make(
        run,
        name,
        description="the output's length is within bounds",
        min_chars=min_chars,
        max_chars=max_chars,
        min_words=min_words,
        max_words=max_words,
    )


# --- similarity against the expected output ----------------------------------------------------


@preset
def levenshtein(
    *, ignore_case: bool = False, threshold: float | None = None, name: str = "levenshtein"
) -> FunctionEvaluator:
    """Character similarity to the expected output: 1 − distance / max(len); two empty texts: 1."""

    def run(data: EvalInput) -> Score:
        output = _fold(data.output, ignore_case)
        expected = _fold(_expected(data, name), ignore_case)
        longest = max(len(output), len(expected))
        if longest == 0:
            return Score(value=1.0, explanation="distance 0")
        distance = levenshtein_distance(output, expected)
        return Score(value=1.0 - distance / longest, explanation=f"distance {distance}")

    return _make(
        run,
        name,
        threshold=threshold,
        description="character similarity to the expected output",
        ignore_case=ignore_case,
    )


@preset
def token_f1(*, threshold: float | None = None, name: str = "token_f1") -> FunctionEvaluator:
    """Token F1 against the expected output, with SQuAD's normalisation."""

    def run(data: EvalInput) -> float:
        return token_f1_score(data.output, _expected(data, name))

    return _make(
        run, name, threshold=threshold, description="SQuAD token F1 to the expected output"
    )


@preset
def rouge_l(
    *, unicode: bool = False, threshold: float | None = None, name: str = "rouge_l"
) -> FunctionEvaluator:
    """ROUGE-L F1 against the expected output (as `rouge-score`'s `rougeL`)."""

    def run(data: EvalInput) -> Score:
        scored = rouge_l_score(data.output, _expected(data, name), unicode=unicode)
        return Score(
            value=scored.fmeasure,
            explanation=f"precision {scored.precision:.4f}, recall {scored.recall:.4f}",
        )

    return _make(
        run,
        name,
        threshold=threshold,
        description="ROUGE-L F1 to the expected output",
        unicode=unicode,
    )


@preset
def bleu(
    *,
    max_n: int = 4,
    smoothing: Smoothing = "exp",
    smooth_value: float | None = None,
    lowercase: bool = False,
    tokenize: Literal["13a", "none"] = "13a",
    threshold: float | None = None,
    name: str = "bleu",
) -> FunctionEvaluator:
    """Sentence BLEU against the expected output, on [0, 1] (sacrebleu's sentence_bleu / 100)."""
    if smoothing not in ("none", "floor", "add-k", "exp"):
        raise ValueError(f"unknown smoothing {smoothing!r}; use none, floor, add-k or exp")

    def run(data: EvalInput) -> float:
        return sentence_bleu(
            data.output,
            [_expected(data, name)],
            max_n=max_n,
            smoothing=smoothing,
            smooth_value=smooth_value,
            lowercase=lowercase,
            tokenize=tokenize,
        )

    return _make(
        run,
        name,
        threshold=threshold,
        description="sentence BLEU to the expected output",
        max_n=max_n,
        smoothing=smoothing,
        smooth_value=smooth_value,
        lowercase=lowercase,
        tokenize=tokenize,
    )


# --- refusal ----------------------------------------------------------------------------------

# "I" followed by a way of saying "cannot": "I can't", "I'm unable to", "I won't be able to".
_CANT = (
    r"(?: can ?not| can't| won't| will not|'m unable to| am unable to|'m not able to"
    r"| am not able to| won't be able to| will not be able to| am not going to|'m not going to)"
)
_REFUSAL = re.compile(
    r"|".join(
        (
            rf"\bI{_CANT} (?:help|assist|comply|provide|do that|do this|fulfil|support|answer"
            r"|share|create|generate|write|engage|participate|discuss|give|offer|continue)",
            rf"\b(?:sorry|unfortunately|apologi[sz]e)\b[^.!?\n]{{0,40}}\bI{_CANT}",
            r"\bI(?:'m| am) (?:sorry|afraid),? but I (?:can|won|will|am|'m|must)",
            r"\bI must (?:decline|refuse|respectfully decline)\b",
            r"\bI(?:'m| am) not (?:allowed|permitted|authori[sz]ed) to\b",
            r"\bas an AI(?: language model| assistant)?,? I (?:can|don't|do not|cannot|am not)",
            r"\b(?:it|that) (?:would|is) (?:not be )?(?:inappropriate|against my guidelines)"
            r" for me to\b",
        )
    ),
    re.IGNORECASE,
)
# A refusal leads the answer; "I can't stress this enough" deep inside a long answer is not one.
_REFUSAL_WINDOW = 400


# Every refusal above holds "I" before a space or an apostrophe, or "for me to": ASCII text
# without any of them is an answer, told by three substring scans instead of the pattern's
# ~30 µs on every answer. (Other text goes to the pattern: case-insensitive, it also takes
# the dotless and the dotted i.)
_REFUSAL_MARKS = ("i ", "i'", "for me to")


def _is_refusal(text: str) -> bool:
    head = text[:_REFUSAL_WINDOW].replace("\u2019", "'")
    if head.isascii():
        lowered = head.lower()
        if not any(mark in lowered for mark in _REFUSAL_MARKS):
            return False
    return _REFUSAL.search(head) is not None


def _refusal_check(name: str, expect_refusal: bool) -> FunctionEvaluator:
    def run(data: EvalInput) -> Score:
        refused = _is_refusal(data.output)
        wanted = refused == expect_refusal
        return Score(
            value=1.0 if wanted else 0.0,
            label="refused" if refused else "answered",
            passed=wanted,
        )

    what = "refuses" if expect_refusal else "answers instead of refusing"
    return _make(run, name, description=f"the output {what}", expect_refusal=expect_refusal)


@preset
def no_refusal(*, name: str = "no_refusal") -> FunctionEvaluator:
    """The output answers rather than refusing ("I'm sorry, but I can't help with that").

    The value is 1 when it answers (label "answered"), 0 when it is a refusal ("refused").
    """
    return _refusal_check(name, expect_refusal=False)


@preset
def refuses(*, name: str = "refuses") -> FunctionEvaluator:
    """The output is a refusal: 1 when it refuses, for a red-team dataset of requests that a
    model should turn down (labels "refused" and "answered" as `no_refusal`'s)."""
    return _refusal_check(name, expect_refusal=True)


@renamed("no_refusal", note=" (or 'refuses' where a refusal is expected)")
def refusal(*, expect_refusal: bool = False, name: str | None = None) -> FunctionEvaluator:
    """Deprecated: `no_refusal()` (1 when the output answers), or `refuses()` with
    `expect_refusal=True`. Its scores were 1 for a refusal whatever was expected."""
    if expect_refusal:
        return refuses(**({"name": name} if name else {}))
    return no_refusal(**({"name": name} if name else {}))


# --- PII --------------------------------------------------------------------------------------


@preset
def no_pii(
    *,
    kinds: Iterable[str] = PII_KINDS,
    include_input: bool = False,
    name: str = "no_pii",
) -> FunctionEvaluator:
    """The output holds no PII: emails, phone numbers, card numbers (Luhn), API keys.

    The value is 1 when none is found, 0 when some is; the label lists the kinds found and
    the explanation counts them, never quoting the PII itself (scores are stored and shown).
    `include_input=True` scans the input messages as well.
    """
    selected = tuple(kinds)
    unknown = sorted(set(selected) - set(PII_KINDS))
    if unknown:
        raise ValueError(f"unknown PII kind(s) {unknown}; use {list(PII_KINDS)}")

    def run(data: EvalInput) -> Score:
        text = f"{data.input_text}\n{data.output}" if include_input else data.output
        found = pii_findings(text, selected)
        return Score(
            value=0.0 if found else 1.0,
            label=",".join(sorted(found)),
            passed=not found,
            explanation=", ".join(f"{kind} ×{count}" for kind, count in sorted(found.items())),
        )

    return _make(
        run,
        name,
        reads_input=include_input,
        description="the output holds no PII",
        kinds=list(selected),
        include_input=include_input,
    )


@renamed("no_pii")
def pii(
    *, kinds: Iterable[str] = PII_KINDS, include_input: bool = False, name: str | None = None
) -> FunctionEvaluator:
    """Deprecated: `no_pii()`, which scores 1 when no PII is found (this one scored 1 when
    some was)."""
    return no_pii(kinds=kinds, include_input=include_input, **({"name": name} if name else {}))


# --- budgets ----------------------------------------------------------------------------------


def _budget(spent: float, budget: float, write: Callable[[Any], str]) -> Score:
    within = spent <= budget
    return Score(
        # Within: 1. Over: the share of the call the budget would have paid for, so the
        # value shows how far over it went.
        value=1.0 if within else budget / spent,
        label="within_budget" if within else "over_budget",
        passed=within,
        explanation=f"{write(spent)} of {write(budget)}",
    )


@preset
def latency_budget(ms: float, *, name: str = "latency_budget") -> FunctionEvaluator:
    """The call took at most `ms` milliseconds; over it, the value is ms / duration."""
    if not ms > 0:
        raise ValueError("latency_budget needs a positive budget in ms")

    def run(data: EvalInput) -> Score:
        if data.duration_ms is None:
            raise ValueError("the input has no duration_ms")
        return _budget(data.duration_ms, ms, duration_ms)

    return _figures_only(
        _make(run, name, description="the call's latency is within a budget", ms=ms)
    )


@preset
def cost_budget(usd: float, *, name: str = "cost_budget") -> FunctionEvaluator:
    """The call cost at most `usd` dollars; over it, the value is usd / cost.

    An unpriced call (cost unknown) is an error score, not a pass; so is a cost that leaves out
    unpriced calls (`cost_lower_bound`: an experiment item's) and is within the budget, where the
    true cost may not be. One already over it fails.
    """
    if not usd > 0:
        raise ValueError("cost_budget needs a positive budget in USD")

    def run(data: EvalInput) -> Score:
        over = data.cost_usd is not None and data.cost_usd > usd
        if data.cost_lower_bound and not over:
            raise ValueError(
                "the cost leaves out calls without a price: whether it is within the budget "
                "is not known"
            )
        if data.cost_usd is None:
            raise ValueError("the call's cost is unknown (no price for its model)")
        return _budget(data.cost_usd, usd, money)

    return _figures_only(
        _make(run, name, description="the call's cost is within a budget", usd=usd)
    )
