"""Similarity of a text to a reference: edit distance, LCS, SQuAD token F1, ROUGE-L, sentence BLEU.

Pure Python, and fast enough for the collector to run thousands a second: the quadratic
metrics (Levenshtein, the LCS of ROUGE-L) use bit-parallel algorithms on Python integers,
O(n·m/64) rather than O(n·m) interpreted steps. Each function gives the value its reference
implementation gives (rouge-score's `rougeL`, sacrebleu's `sentence_bleu`, the SQuAD 2.0
script's F1); the presets built on them are in `heuristics`.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "ARTICLES",
    "RougeL",
    "Smoothing",
    "lcs_length",
    "levenshtein_distance",
    "rouge_l_score",
    "sentence_bleu",
    "token_f1_score",
]

Smoothing = Literal["none", "floor", "add-k", "exp"]
# English articles, dropped by SQuAD's normalisation (and by `exact_match(ignore_articles=True)`).
ARTICLES = re.compile(r"\b(?:a|an|the)\b", re.IGNORECASE)


def _match_masks(pattern: Sequence[Any]) -> dict[Any, int]:
    """For each symbol of `pattern`, the bit mask of the positions where it occurs."""
    masks: dict[Any, int] = {}
    for position, symbol in enumerate(pattern):
        masks[symbol] = masks.get(symbol, 0) | (1 << position)
    return masks


def levenshtein_distance(a: Sequence[Any], b: Sequence[Any]) -> int:
    """The edit distance (insertions, deletions, substitutions) between two sequences.

    Myers' bit-vector algorithm in Hyyrö's formulation for the global distance: one column
    of the dynamic-programming table is a pair of bit vectors, so each symbol of `a` costs
    a handful of big-integer operations instead of len(b) interpreted steps.
    """
    if len(a) < len(b):
        a, b = b, a
    m = len(b)
    if m == 0:
        return len(a)
    masks = _match_masks(b)
    full = (1 << m) - 1
    last = 1 << (m - 1)
    vp, vn, distance = full, 0, m
    for symbol in a:
        eq = masks.get(symbol, 0)
        xv = eq | vn
        xh = ((((eq & vp) + vp) & full) ^ vp) | eq
        hp = (vn | ~(xh | vp)) & full
        hn = vp & xh
        if hp & last:
            distance += 1
        elif hn & last:
            distance -= 1
        # The top row of the table is 0, 1, 2, ...: a horizontal +1 enters at the bottom bit.
        hp = ((hp << 1) | 1) & full
        hn = (hn << 1) & full
        vp = (hn | ~(xv | hp)) & full
        vn = hp & xv
    return distance


def lcs_length(a: Sequence[Any], b: Sequence[Any]) -> int:
    """The length of the longest common subsequence of two sequences (bit-parallel)."""
    if len(a) < len(b):
        a, b = b, a
    m = len(b)
    if m == 0:
        return 0
    masks = _match_masks(b)
    full = (1 << m) - 1
    v = full
    for symbol in a:
        u = v & masks.get(symbol, 0)
        v = ((v + u) | (v - u)) & full
    return m - v.bit_count()


_SQUAD_PUNCTUATION = str.maketrans("", "", string.punctuation)


def _squad_tokens(text: str) -> list[str]:
    """SQuAD's `normalize_answer`: lower case, no ASCII punctuation, no articles, split."""
    text = text.lower().translate(_SQUAD_PUNCTUATION)
    return ARTICLES.sub(" ", text).split()


def token_f1_score(prediction: str, reference: str) -> float:
    """SQuAD token F1: the harmonic mean of token precision and recall (bags of tokens).

    As in the SQuAD 2.0 script, when either side normalises to no tokens the score is 1 if
    both do, else 0.
    """
    predicted, expected = _squad_tokens(prediction), _squad_tokens(reference)
    if not predicted or not expected:
        return float(predicted == expected)
    common = sum((Counter(predicted) & Counter(expected)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(expected)
    return 2 * precision * recall / (precision + recall)


_ROUGE_NON_ALPHANUMERIC = re.compile(r"[^a-z0-9]+")
_UNICODE_WORD = re.compile(r"[^\W_]+")


def _rouge_tokens(text: str, unicode: bool) -> list[str]:
    lowered = text.lower()
    if unicode:
        return _UNICODE_WORD.findall(lowered)
    # rouge-score's default tokenizer: anything but ASCII letters and digits separates.
    return _ROUGE_NON_ALPHANUMERIC.sub(" ", lowered).split()


@dataclass(frozen=True)
class RougeL:
    """ROUGE-L precision, recall and F1 (the `rouge-score` package's `Score` fields)."""

    precision: float
    recall: float
    fmeasure: float


def rouge_l_score(prediction: str, reference: str, *, unicode: bool = False) -> RougeL:
    """ROUGE-L of `prediction` against `reference`: LCS-based precision, recall and F1.

    Tokenised as the `rouge-score` package's default (lower case, split on anything not
    ASCII alphanumeric, no stemming), so values equal its `rougeL`; an empty side scores 0.
    `unicode=True` keeps letters outside ASCII (the default tokenizer drops them).
    """
    predicted, expected = _rouge_tokens(prediction, unicode), _rouge_tokens(reference, unicode)
    if not predicted or not expected:
        return RougeL(0.0, 0.0, 0.0)
    common = lcs_length(predicted, expected)
    precision, recall = common / len(predicted), common / len(expected)
    f = 2 * precision * recall / (precision + recall) if common else 0.0
    return RougeL(precision, recall, f)


# sacrebleu's `13a` tokenizer (mteval-v13a, the WMT standard), rule for rule.
_BLEU_13A_RULES = (
    (re.compile(r"([\{-\~\[-\` -\&\(-\+\:-\@\/])"), r" \1 "),
    (re.compile(r"([^0-9])([\.,])"), r"\1 \2 "),
    (re.compile(r"([\.,])([^0-9])"), r" \1 \2"),
    (re.compile(r"([0-9])(-)"), r"\1 \2 "),
)
_SMOOTH_DEFAULTS: dict[str, float] = {"floor": 0.1, "add-k": 1.0}


def _tokenize_13a(line: str) -> list[str]:
    line = line.replace("<skipped>", "").replace("-\n", "").replace("\n", " ")
    if "&" in line:
        line = (
            line.replace("&quot;", '"')
            .replace("&amp;", "&")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
        )
    line = f" {line} "
    for rule, replacement in _BLEU_13A_RULES:
        line = rule.sub(replacement, line)
    return line.split()


def _ngrams(tokens: Sequence[str], max_n: int) -> Counter[tuple[str, ...]]:
    return Counter(
        tuple(tokens[i : i + n]) for n in range(1, max_n + 1) for i in range(len(tokens) - n + 1)
    )


def sentence_bleu(
    hypothesis: str,
    references: Sequence[str],
    *,
    max_n: int = 4,
    smoothing: Smoothing = "exp",
    smooth_value: float | None = None,
    lowercase: bool = False,
    tokenize: Literal["13a", "none"] = "13a",
    effective_order: bool = True,
) -> float:
    """Sentence BLEU in [0, 1], computed as `sacrebleu.sentence_bleu(...).score / 100`.

    The geometric mean of the clipped n-gram precisions (n = 1..max_n, uniform weights) times
    the brevity penalty exp(1 − r/c) against the closest reference length (the shorter on a
    tie). `smoothing` is one of Chen & Cherry (2014)'s: "none"; "floor" (method 1, a zero
    count becomes `smooth_value`, default 0.1, as NLTK's method1); "add-k" (method 2, k added
    to counts of n > 1, default 1); "exp" (method 3, mteval's: the k-th zero precision
    becomes 1/(2^k·total)), sacrebleu's default for sentences. `effective_order` leaves out
    orders the hypothesis is too short to have. `tokenize="none"` splits on whitespace.
    """
    if max_n < 1:
        raise ValueError("max_n must be at least 1")
    if not references:
        raise ValueError("sentence_bleu needs at least one reference")

    def tokens(text: str) -> list[str]:
        text = text.lower() if lowercase else text
        return _tokenize_13a(text.rstrip()) if tokenize == "13a" else text.split()

    hyp = tokens(hypothesis)
    refs = [tokens(reference) for reference in references]
    ref_counts: Counter[tuple[str, ...]] = Counter()
    for ref in refs:
        ref_counts |= _ngrams(ref, max_n)  # `|` keeps the maximum count per n-gram
    # Closest reference length; the shorter one on a tie.
    ref_len = min((abs(len(ref) - len(hyp)), len(ref)) for ref in refs)[1]
    correct = [0.0] * max_n
    total = [0.0] * max_n
    for ngram, count in _ngrams(hyp, max_n).items():
        total[len(ngram) - 1] += count
        correct[len(ngram) - 1] += min(count, ref_counts.get(ngram, 0))
    if not any(correct):
        return 0.0
    value = smooth_value if smooth_value is not None else _SMOOTH_DEFAULTS.get(smoothing, 0.0)
    precisions = [0.0] * max_n
    order = max_n
    exp_divisor = 1.0
    for n in range(max_n):
        if smoothing == "add-k" and n > 0:
            correct[n] += value
            total[n] += value
        if total[n] == 0:
            break
        if effective_order:
            order = n + 1
        if correct[n] == 0:
            if smoothing == "exp":
                exp_divisor *= 2
                precisions[n] = 1.0 / (exp_divisor * total[n])
            elif smoothing == "floor":
                precisions[n] = value / total[n]
        else:
            precisions[n] = correct[n] / total[n]
    if any(p == 0.0 for p in precisions[:order]):
        return 0.0
    hyp_len = len(hyp)
    brevity = 1.0 if hyp_len >= ref_len else math.exp(1 - ref_len / hyp_len)
    return min(brevity * math.exp(sum(map(math.log, precisions[:order])) / order), 1.0)
