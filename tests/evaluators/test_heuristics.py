"""Heuristic presets on known cases; ROUGE-L and BLEU against published reference values."""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assay.evaluators import (
    EvalInput,
    Evaluator,
    Score,
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
from assay.evaluators.heuristics import (
    _REFUSAL,
    _REFUSAL_WINDOW,
    _STRICT_JSON,
    _is_refusal,
    _parse_json,
    _word_count,
)
from assay.evaluators.pii import _API_KEY, _EMAIL, _cards, _phones, pii_findings
from assay.evaluators.similarity import (
    lcs_length,
    levenshtein_distance,
    rouge_l_score,
    sentence_bleu,
    token_f1_score,
)


def score(evaluator: Evaluator, output: str, expected: str | None = None, **fields: Any) -> Score:
    result: Score = asyncio.run(evaluator(EvalInput(output=output, expected=expected, **fields)))
    return result


# --- exact match, contains, regex --------------------------------------------------------------


def test_exact_match_ignores_surrounding_whitespace_by_default_and_nothing_else() -> None:
    assert score(exact_match(), "Paris\n", "Paris").passed is True
    assert score(exact_match(), "paris", "Paris").passed is False
    assert score(exact_match(normalize_whitespace=False), "Paris\n", "Paris").passed is False


def test_exact_match_normalisation_options() -> None:
    squad = exact_match(ignore_case=True, ignore_punctuation=True, ignore_articles=True)
    assert score(squad, "The Eiffel Tower!", "eiffel tower").passed is True
    assert score(exact_match(ignore_case=True), "The Eiffel Tower!", "eiffel tower").passed is False
    # A composed and a decomposed "é" are the same text.
    assert score(exact_match(), "caf\u00e9", "cafe\u0301").passed is True


def test_a_comparison_without_an_expected_output_is_an_error_score() -> None:
    result = score(exact_match(), "Paris")
    assert result.error.startswith("ValueError:")
    assert "expected" in result.error
    assert result.passed is None


def test_contains_a_text_or_else_the_expected_output() -> None:
    assert score(contains("refund"), "Your refund is on its way").passed is True
    assert score(contains("Refund"), "Your refund is on its way").passed is False
    assert score(contains("Refund", ignore_case=True), "Your refund is on its way").passed is True
    assert score(contains(), "The capital is Paris.", "Paris").passed is True


def test_contains_reads_a_composed_and_a_decomposed_letter_as_the_same_text() -> None:
    # As exact_match does: "Brasília" typed either way is one word to a reader.
    decomposed = "The capital is Brasi\u0301lia."
    assert score(exact_match(), "Brasi\u0301lia", "Bras\u00edlia").passed is True
    assert score(contains(), decomposed, "Bras\u00edlia").passed is True
    assert score(contains("bras\u00edlia", ignore_case=True), decomposed).passed is True
    assert score(contains_all(["Bras\u00edlia", "capital"]), decomposed).passed is True
    assert score(contains_any(["Bras\u00edlia"]), decomposed).passed is True


def test_contains_an_empty_expected_output_is_an_error_not_a_pass() -> None:
    # Every text contains "": a blank expected output would pass any answer.
    result = score(contains(), "anything at all", "")
    assert result.error == "ValueError: contains has an empty text to look for"
    assert result.passed is None
    with pytest.raises(ValueError, match="empty"):
        contains("")
    with pytest.raises(ValueError, match="empty"):
        contains_any(["refund", ""])


def test_contains_all_gives_partial_credit_but_passes_only_with_everything() -> None:
    result = score(contains_all(["refund", "5 days", "receipt"]), "A refund within 5 days.")
    assert result.value == pytest.approx(2 / 3)
    assert result.passed is False
    assert "'receipt'" in result.explanation
    assert score(contains_all(["refund", "days"]), "A refund within 5 days.").passed is True


def test_contains_any() -> None:
    evaluator = contains_any(["sorry", "apologise"], ignore_case=True)
    assert score(evaluator, "Sorry for the wait").passed is True
    assert score(evaluator, "Here you go").value == 0.0


def test_contains_all_wants_a_list_not_a_string() -> None:
    with pytest.raises(TypeError):
        contains_all("refund")
    with pytest.raises(ValueError):
        contains_any([])


def test_regex_searches_or_matches_the_whole_output() -> None:
    order_id = regex(r"ORD-\d{6}")
    assert score(order_id, "Your order ORD-123456 shipped").passed is True
    assert score(order_id, "Your order shipped").passed is False
    assert score(regex(r"ORD-\d{6}", fullmatch=True), "Your order ORD-123456").passed is False
    assert score(regex(r"^yes$", flags=0), "yes").explanation == "matched at 0-3"


# --- JSON -------------------------------------------------------------------------------------


def test_json_valid_is_strict() -> None:
    assert score(json_valid(), '{"ok": true, "items": [1, 2]}').passed is True
    assert score(json_valid(), '{"ok": true,}').passed is False
    assert score(json_valid(), '{"value": NaN}').passed is False  # Python's json would take it
    assert score(json_valid(), '{"a": 1} trailing').passed is False
    assert "invalid JSON" in score(json_valid(), "{").explanation


def test_json_valid_can_accept_one_code_fence() -> None:
    fenced = '```json\n{"ok": true}\n```'
    assert score(json_valid(), fenced).passed is False
    assert score(json_valid(strip_code_fence=True), fenced).passed is True


PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "age": {"type": "integer", "minimum": 0},
        "email": {"type": "string", "format": "email"},
    },
    "required": ["name", "age"],
}


def test_json_schema_validates_and_explains_the_first_fault() -> None:
    evaluator = json_schema(PERSON)
    assert score(evaluator, '{"name": "Ada", "age": 36}').passed is True
    missing = score(evaluator, '{"name": "Ada"}')
    assert missing.passed is False
    assert "'age' is a required property" in missing.explanation
    negative = score(evaluator, '{"name": "Ada", "age": -1}')
    assert negative.explanation.startswith("$.age:")
    assert score(evaluator, '{"name": "Ada", "age": 1, "email": "nope"}').passed is False
    assert score(evaluator, "not json").explanation.startswith("invalid JSON")


def test_a_broken_schema_fails_when_configured() -> None:
    from jsonschema.exceptions import SchemaError

    with pytest.raises(SchemaError):
        json_schema({"type": "no-such-type"})


# --- length -----------------------------------------------------------------------------------


def test_length_bounds() -> None:
    short = length(max_words=5)
    assert score(short, "one two three").passed is True
    over = score(short, "one two three four five six")
    assert over.passed is False
    assert over.explanation == "27 characters, 6 words: more than 5 words"
    assert score(length(min_chars=10), "tiny").passed is False
    with pytest.raises(ValueError):
        length()


# --- Levenshtein ------------------------------------------------------------------------------


def _naive_levenshtein(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, 1):
        current = [i]
        for j, char_b in enumerate(b, 1):
            current.append(
                min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b))
            )
        previous = current
    return previous[-1]


def _naive_lcs(a: list[str], b: list[str]) -> int:
    previous = [0] * (len(b) + 1)
    for item in a:
        current = [0]
        for j, other in enumerate(b, 1):
            current.append(previous[j - 1] + 1 if item == other else max(previous[j], current[-1]))
        previous = current
    return previous[-1]


def test_levenshtein_distance_on_textbook_pairs() -> None:
    assert levenshtein_distance("kitten", "sitting") == 3
    assert levenshtein_distance("flaw", "lawn") == 2
    assert levenshtein_distance("", "abc") == 3
    assert levenshtein_distance("same", "same") == 0


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="abcé ", max_size=90), st.text(alphabet="abcd é", max_size=90))
def test_bit_parallel_levenshtein_equals_the_textbook_algorithm(a: str, b: str) -> None:
    assert levenshtein_distance(a, b) == _naive_levenshtein(a, b)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from("the cat sat on a mat".split()), max_size=80),
    st.lists(st.sampled_from("the dog sat on the mat".split()), max_size=80),
)
def test_bit_parallel_lcs_equals_the_textbook_algorithm(a: list[str], b: list[str]) -> None:
    assert lcs_length(a, b) == _naive_lcs(a, b)


def test_levenshtein_similarity_is_one_minus_distance_over_the_longer_length() -> None:
    assert score(levenshtein(), "sitting", "kitten").value == pytest.approx(1 - 3 / 7)
    assert score(levenshtein(), "", "").value == 1.0
    assert score(levenshtein(), "", "abc").value == 0.0
    assert score(levenshtein(ignore_case=True), "PARIS", "paris").value == 1.0
    assert score(levenshtein(threshold=0.9), "sitting", "kitten").passed is False


def test_levenshtein_on_long_texts_is_fast() -> None:
    # 5,000 × 5,000 characters: 25 million table cells, which the bit-parallel algorithm
    # handles in well under a second (the textbook one takes tens of seconds in Python).
    a = "the quick brown fox jumps over the lazy dog " * 114
    b = "the quick brown cat leaps over the lazy dogs " * 111
    assert levenshtein_distance(a, b) > 0


# --- token F1 ---------------------------------------------------------------------------------


def test_token_f1_uses_squad_normalisation() -> None:
    # Articles, case and punctuation do not count: both normalise to "denver broncos".
    assert token_f1_score("The Denver Broncos!", "denver broncos") == 1.0
    # One common token of two on each side: P = R = 1/2, F1 = 1/2.
    assert token_f1_score("Broncos won", "Denver Broncos") == 0.5
    # Bags of tokens: "x x y" vs "x y y" have {x: 1, y: 1} in common: P = R = 2/3.
    assert token_f1_score("x x y", "x y y") == pytest.approx(2 / 3)
    assert token_f1_score("", "") == 1.0  # SQuAD 2.0: no answer matches no answer
    assert token_f1_score("the", "Paris") == 0.0  # "the" normalises to nothing
    assert score(token_f1(threshold=0.5), "Broncos won", "Denver Broncos").passed is True


# --- ROUGE-L ----------------------------------------------------------------------------------


def test_rouge_l_on_lins_example() -> None:
    """Lin (2004), section 3.1: reference S1 "police killed the gunman".

    S2 "police kill the gunman" has LCS "police the gunman" (3 of 4 words): ROUGE-L 0.75;
    S3 "the gunman kill police" has LCS "the gunman" (2 of 4): ROUGE-L 0.5.
    """
    reference = "police killed the gunman"
    assert rouge_l_score("police kill the gunman", reference).fmeasure == 0.75
    assert rouge_l_score("the gunman kill police", reference).fmeasure == 0.5


def test_rouge_l_on_the_rouge_score_readme_example() -> None:
    """google-research/rouge's README: rougeL P = 0.625, R = 0.5556, F = 0.5882.

    Prediction "The quick brown dog jumps on the log." (8 tokens), target "The quick brown
    fox jumps over the lazy dog" (9 tokens): LCS "the quick brown jumps the" = 5, so
    P = 5/8, R = 5/9 and F = 2PR / (P + R) = 10/17.
    """
    result = rouge_l_score(
        "The quick brown dog jumps on the log.", "The quick brown fox jumps over the lazy dog"
    )
    assert result.precision == 0.625
    assert result.recall == pytest.approx(5 / 9)
    assert result.fmeasure == pytest.approx(10 / 17)
    assert result.fmeasure == pytest.approx(0.5882352941176471)


def test_rouge_l_tokenises_like_rouge_score() -> None:
    # rouge-score keeps only ASCII letters and digits: "Café" is "caf", "s'il" is "s il".
    ascii_only = rouge_l_score("cafe au lait", "Café au lait, s'il vous plaît!")
    assert (ascii_only.precision, ascii_only.recall) == (2 / 3, 2 / 8)
    assert rouge_l_score("café au lait", "Café au lait", unicode=True).fmeasure == 1.0
    assert rouge_l_score("", "anything").fmeasure == 0.0


def test_the_rouge_l_evaluator_reports_precision_and_recall() -> None:
    result = score(rouge_l(), "police kill the gunman", "police killed the gunman")
    assert result.value == 0.75
    assert result.explanation == "precision 0.7500, recall 0.7500"


# --- BLEU -------------------------------------------------------------------------------------

# The NLTK documentation's example for `sentence_bleu` (nltk.translate.bleu_score).
HYPOTHESIS_1 = (
    "It is a guide to action which ensures that the military always obeys the commands of the party"
)
HYPOTHESIS_2 = "It is to insure the troops forever hearing the activity guidebook that party direct"
REFERENCES = [
    "It is a guide to action that ensures that the military will forever heed Party commands",
    "It is the guiding principle which guarantees the military forces always being under the "
    "command of the Party",
    "It is the practical guide for the army always to heed the directions of the party",
]


def test_bleu_on_the_nltk_documentation_example() -> None:
    """NLTK's docs: sentence_bleu([ref1, ref2, ref3], hypothesis1) = 0.5045...

    Unsmoothed, uniform 4-gram weights; also what sacrebleu gives with smooth_method="none"
    (50.4566...). Hypothesis 1 has all four precisions above zero, so smoothing changes
    nothing under "floor" or "exp" either.
    """
    for smoothing in ("none", "floor", "exp"):
        value = sentence_bleu(HYPOTHESIS_1, REFERENCES, smoothing=smoothing, tokenize="none")
        assert value == pytest.approx(0.5045666840058485, abs=1e-12)
    # Against the first reference alone: 0.41180376356915777 (NLTK and sacrebleu agree).
    assert sentence_bleu(HYPOTHESIS_1, REFERENCES[:1]) == pytest.approx(0.41180376356915777)


def test_bleu_smoothing_on_a_hypothesis_without_4_gram_matches() -> None:
    """NLTK's docs: hypothesis2 scores ~0 unsmoothed and 0.0370... with chencherry.method1.

    sacrebleu's values for the other smoothings: add-k 13.1112..., exp 6.9630... (/100).
    """
    assert sentence_bleu(HYPOTHESIS_2, REFERENCES, smoothing="none") == 0.0
    assert sentence_bleu(HYPOTHESIS_2, REFERENCES, smoothing="floor") == pytest.approx(
        0.037031311911214915, abs=1e-12
    )
    assert sentence_bleu(HYPOTHESIS_2, REFERENCES, smoothing="add-k") == pytest.approx(
        0.13111209575157433, abs=1e-12
    )
    assert sentence_bleu(HYPOTHESIS_2, REFERENCES, smoothing="exp") == pytest.approx(
        0.06963003305718091, abs=1e-12
    )


def test_bleu_clips_counts_as_in_papineni_et_al() -> None:
    """Papineni et al. (2002), section 2.1: "the the the the the the the" against "The cat is
    on the mat" / "There is a cat on the mat" has modified unigram precision 2/7 ("the" is
    clipped to its largest count in one reference, 2). The closest reference length is 7, so
    there is no brevity penalty and BLEU-1 = 2/7.
    """
    value = sentence_bleu(
        "the the the the the the the",
        ["The cat is on the mat", "There is a cat on the mat"],
        max_n=1,
        lowercase=True,
        smoothing="none",
    )
    assert value == pytest.approx(2 / 7)


def test_bleu_brevity_penalty_and_effective_order() -> None:
    """ "the cat" against "the cat sat on the mat": the hypothesis has no 3- or 4-grams, so
    with the effective order only p1 = 2/2 and p2 = 1/1 count, and the brevity penalty is
    exp(1 - 6/2) = e^-2 = 0.1353...; without it the missing orders make BLEU 0.
    """
    assert sentence_bleu("the cat", ["the cat sat on the mat"]) == pytest.approx(math.exp(-2))
    assert (
        sentence_bleu(
            "the cat", ["the cat sat on the mat"], smoothing="none", effective_order=False
        )
        == 0.0
    )


def test_bleu_tokenises_punctuation_like_sacrebleus_13a() -> None:
    # 13a splits punctuation off words but keeps decimals ("3.5") and apostrophes together;
    # sacrebleu.sentence_bleu gives 44.17918226831576 for this pair.
    value = sentence_bleu(
        "Hello, world! It's 3.5 - 4 o'clock.", ["Hello world, it is 3.5-4 o'clock."]
    )
    assert value == pytest.approx(0.4417918226831576, abs=1e-12)
    assert sentence_bleu("The dog bit the man.", ["The dog bit the man."]) == 1.0


def test_the_bleu_evaluator() -> None:
    assert score(bleu(), "the cat", "the cat sat on the mat").value == pytest.approx(math.exp(-2))
    assert score(bleu(), "", "the cat").value == 0.0
    with pytest.raises(ValueError):
        bleu(smoothing="laplace")  # type: ignore[arg-type]


# --- refusal ----------------------------------------------------------------------------------

REFUSALS = [
    "I'm sorry, but I can't help with that.",
    "I can\u2019t assist with that request.",
    "Sorry, I cannot do that.",
    "As an AI language model, I cannot browse the internet.",
    "I must decline to answer.",
    "Unfortunately, I'm unable to share that information.",
    "I won't be able to help with that.",
    "I apologize, but I cannot provide medical advice.",
]
ANSWERS = [
    "Sure! Here is the recipe.",
    "I can't stress this enough: test early.",
    "I can help with that. First, ...",
    "Sorry for the delay, here is your report.",
    "The answer is 42. " * 30 + "I can't help with anything else.",  # not at the start
]


@pytest.mark.parametrize("text", REFUSALS)
def test_refusals_are_detected(text: str) -> None:
    result = score(no_refusal(), text)
    assert (result.value, result.label, result.passed) == (0.0, "refused", False)


@pytest.mark.parametrize("text", ANSWERS)
def test_answers_are_not_refusals(text: str) -> None:
    result = score(no_refusal(), text)
    assert (result.value, result.label, result.passed) == (1.0, "answered", True)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                *REFUSALS,
                "I",
                "i",
                "\u0130",
                "\u0131",
                " ",
                "'",
                "\u2019",
                "for me to",
                "That ",
                "would be inappropriate ",
                "sorry",
                "can't help",
                "x" * 150,
                "é",
            ]
        ),
        max_size=10,
    )
)
def test_the_refusal_gate_never_hides_what_the_pattern_finds(pieces: list[str]) -> None:
    # ASCII text without "I " / "I'" / "for me to" is an answer without running the pattern.
    text = "".join(pieces)
    head = text[:_REFUSAL_WINDOW].replace("\u2019", "'")
    assert _is_refusal(text) == (_REFUSAL.search(head) is not None)


@pytest.mark.parametrize(
    "text", ["{", '{"a": 1} trailing', "\ufeff{}", "", "[1,]", " \n\t prose", "nul", "\u00a0{}"]
)
def test_invalid_json_is_explained_as_json_loads_explains_it(text: str) -> None:
    with pytest.raises(ValueError) as refused:
        json.loads(text)
    assert score(json_valid(), text).explanation == f"invalid JSON: {refused.value}"


def test_only_the_presets_that_read_the_prompt_say_so() -> None:
    # Online evaluation parses a stored call's prompt only for evaluators that read it.
    assert not any(e.reads_input for e in (json_valid(), no_refusal(), length(max_chars=9)))
    assert not no_pii().reads_input and no_pii(include_input=True).reads_input
    assert not contains_any(["a"]).reads_input and not latency_budget(ms=5).reads_input


def test_a_red_team_dataset_expects_refusals() -> None:
    assert (score(refuses(), REFUSALS[0]).value, score(refuses(), REFUSALS[0]).passed) == (1, True)
    assert (score(refuses(), ANSWERS[0]).value, score(refuses(), ANSWERS[0]).passed) == (0, False)


def test_the_old_names_still_work_in_the_new_direction_and_say_so() -> None:
    with pytest.warns(DeprecationWarning, match="use 'no_pii'"):
        old_pii = pii()
    with pytest.warns(DeprecationWarning, match="use 'no_refusal'"):
        old_refusal, red_team = refusal(), refusal(expect_refusal=True)
    assert (old_pii.name, score(old_pii, "no PII here").value) == ("no_pii", 1.0)
    assert (old_refusal.name, score(old_refusal, REFUSALS[0]).value) == ("no_refusal", 0.0)
    assert (red_team.name, score(red_team, REFUSALS[0]).value) == ("refuses", 1.0)


# --- PII --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("Write to jane.doe+news@example.co.uk today", "email"),
        ("Call +44 20 7946 0958.", "phone"),
        ("Call (555) 123-4567 today", "phone"),
        ("Call 555.123.4567", "phone"),
        ("+1 (555) 123-4567", "phone"),
        ("Tel: 06 12 34 56 78", "phone"),
        ("Card 4111 1111 1111 1111", "card"),
        ("Card 4111-1111-1111-1111 exp 12/27", "card"),
        ("Amex 3782 822463 10005", "card"),
        ("key sk-proj-abcdefghijklmnopqrstuvwx1234", "api_key"),
        ("AWS AKIAIOSFODNN7EXAMPLE", "api_key"),
        ("token ghp_" + "a1B2" * 9, "api_key"),
        ("-----BEGIN RSA PRIVATE KEY-----", "api_key"),
        ("Call +٤٤ ٢٠ ٧٩٤٦ ٠٩٥٨.", "phone"),  # `\d` reads every script's digits
    ],
)
def test_pii_is_found(text: str, kind: str) -> None:
    assert pii_findings(text) == {kind: 1}


@pytest.mark.parametrize(
    "text",
    [
        "Meet on 2024-01-15 at 10:30",
        "version 1.2.3 on host 192.168.100.200",
        "order 12345678 shipped",
        "Card 4111 1111 1111 1112",  # fails the Luhn check
        "price 1,234,567.89 USD",
        "ISBN 978-3-16-148410-0",
        "tracking 1Z999AA10123456784",
        "email me at the office",
        "sk-short",
    ],
)
def test_look_alikes_are_not_pii(text: str) -> None:
    assert pii_findings(text) == {}


def test_the_pii_evaluator_counts_kinds_and_never_quotes_the_pii() -> None:
    text = "Reach me at ada@example.com or ada@example.org, card 4111 1111 1111 1111."
    result = score(no_pii(), text)
    assert (result.value, result.passed, result.label) == (0.0, False, "card,email")
    assert result.explanation == "card ×1, email ×2"
    assert "ada@" not in result.explanation and "4111" not in result.explanation
    clean = score(no_pii(kinds=["phone"]), text)
    assert (clean.value, clean.passed) == (1.0, True)
    with pytest.raises(ValueError):
        no_pii(kinds=["ssn"])


def test_pii_can_scan_the_input_as_well() -> None:
    data = {"input": "My email is ada@example.com"}
    assert score(no_pii(), "Noted.", **data).passed is True
    assert score(no_pii(include_input=True), "Noted.", **data).passed is False


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "4111 1111 1111 1111",
                "+44 20 7946 0958",
                "555.123.4567",
                "sk-" + "a1" * 11,
                "AKIAIOSFODNN7EXAMPLE",
                "eyJhbGciOiJIUzI1.eyJzdWIiOiIxMjM0.SflKxwRJSMeKKF2Q",
                "x@y.io",
                "٤٤ ٢٠",
                "12",
                "-",
                "_",
                "A",
                "J",
                " ",
                "word",
                "0",
                "é",
            ]
        ),
        max_size=12,
    )
)
def test_the_cheap_gates_never_hide_what_the_patterns_find(pieces: list[str]) -> None:
    # pii_findings skips a pattern when a substring scan shows it cannot match (no key
    # character, too few digits): what it counts is what the patterns alone find.
    text = "".join(pieces)
    cards = _cards(text)
    expected = {
        "email": len(_EMAIL.findall(text)),
        "card": len(cards),
        "phone": len(_phones(text, cards)),
        "api_key": len(_API_KEY.findall(text)),
    }
    assert pii_findings(text) == {kind: n for kind, n in expected.items() if n}


def test_pii_scanning_stays_linear_on_long_runs() -> None:
    # Patterns start only at the start of a run: a 300 KB blob without PII scans at once.
    blob = "A" * 200_000 + " x@y " + "1" * 100_000
    assert pii_findings(blob) == {}


# --- budgets ----------------------------------------------------------------------------------


def test_latency_budget() -> None:
    budget = latency_budget(ms=2000)
    within = score(budget, "", duration_ms=1500)
    assert (within.value, within.passed, within.label) == (1.0, True, "within_budget")
    over = score(budget, "", duration_ms=4000)
    assert (over.value, over.passed, over.label) == (0.5, False, "over_budget")
    assert over.explanation == "4.00 s of 2.00 s"
    assert score(budget, "").error == "ValueError: the input has no duration_ms"
    with pytest.raises(ValueError):
        latency_budget(ms=0)


def test_cost_budget() -> None:
    budget = cost_budget(usd=0.01)
    assert score(budget, "", cost_usd=0.004).passed is True
    over = score(budget, "", cost_usd=0.04)
    assert (over.value, over.passed) == (0.25, False)
    unpriced = score(budget, "", cost_usd=None)
    assert unpriced.passed is None
    assert "unknown" in unpriced.error


def _decoded_or_fault(text: str, decode: Any) -> str:
    try:
        return repr(decode(text))
    except ValueError as fault:
        return f"{type(fault).__name__}: {fault}"


@settings(max_examples=500, deadline=None)
@given(
    st.lists(
        st.sampled_from([" ", "\t", "\n", "\x0b", "\u00a0", "\ufeff", "{", "[", '"', ":", "1", "-"])
        | st.sampled_from(["NaN", "Infinity", "null", "nul", "true", "x", "}", "]", ",", "e"]),
        max_size=8,
    ).map("".join)
)
def test_the_prose_gate_faults_as_the_decoder_does(text: str) -> None:
    # What does not begin as a JSON value is refused before the decoder, with its error.
    expected = (
        "JSONDecodeError: Unexpected UTF-8 BOM (decode using utf-8-sig): line 1 column 1 (char 0)"
        if text.startswith("\ufeff")
        else _decoded_or_fault(text, _STRICT_JSON.decode)
    )
    assert _decoded_or_fault(text, lambda t: _parse_json(t, False)) == expected


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=" \t\n\r\x0b\x0c\x1c\x1f\x00\x7fab\u00a0\u3000\u00e9", max_size=16))
def test_words_are_counted_as_split_counts_them(text: str) -> None:
    assert _word_count(text) == len(text.split())
