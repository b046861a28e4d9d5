"""Redaction's cheap gates never skip a match: over a varied corpus (the golden corpus's spans,
the recorded provider traffic, generated personal data and secrets, unicode look-alikes, texts at
each gate's boundary), the redactor masks exactly what the same patterns mask when every one is
applied to every value, with no gate in front of it."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from assay.collector import redaction
from assay.collector.normalize.otlp import any_value
from assay.collector.redaction import BUILTIN_PATTERNS, Redactor, luhn_valid
from tests.collector.golden.rows import corpus
from tests.instrumentation.recordings.cassettes import recorded_calls


class Ungated(Redactor):
    """Every rule's pattern on every value and every JSON document decoded: the reference."""

    def _might_match(self, raw: str) -> bool:
        return True

    def _apply(self, text: str) -> str:
        for rule in self._rules:
            if len(text) >= rule.min_length:
                text = rule.mask(text)
        return text


def _every_key_word_start(text: str) -> Iterator[int]:
    return (i for i in range(len(text)) if redaction._KEY_WORD.match(text, i))


@pytest.fixture
def reference(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Redact with the reference: the key words found by trying every position, and every
    `\\u` escape read (no gate on either)."""

    def redact(texts: list[str]) -> list[str]:
        with monkeypatch.context() as patched:
            patched.setattr(redaction, "_key_word_starts", _every_key_word_start)
            patched.setattr(redaction, "_escapes", lambda text: "\\u" in text)
            ungated = Ungated(BUILTIN_PATTERNS)
            return [ungated.redact(text) for text in texts]

    yield redact


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)


def _golden_texts() -> list[str]:
    texts = []
    for request in corpus():
        for resource_spans in request.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    texts.append(span.status.message)
                    for pair in span.attributes:
                        texts += _strings(any_value(pair.value))
                    for event in span.events:
                        for pair in event.attributes:
                            texts += _strings(any_value(pair.value))
    return texts


def _recorded_texts() -> list[str]:
    texts = []
    for call in recorded_calls():
        body = call.request_body
        texts.append(body if isinstance(body, str) else json.dumps(body))
        texts.append(call.body.decode("utf-8", "replace"))
    return texts


def _card(rng: random.Random, prefix: str, length: int) -> str:
    digits = prefix + "".join(rng.choice("0123456789") for _ in range(length - len(prefix) - 1))
    return next(digits + check for check in "0123456789" if luhn_valid(digits + check))


def _pieces(rng: random.Random) -> list[str]:
    card = _card(rng, rng.choice("23456"), rng.choice((13, 15, 16, 19)))
    spaced = " ".join(card[i : i + 4] for i in range(0, len(card), 4))
    secret = "".join(rng.choice("abcXYZ019+/_-") for _ in range(rng.choice((31, 32, 40))))
    secret += rng.choice("0123456789")
    key_word = rng.choice(("key", "Key", "KEY", "token", "Token", "secret", "ſecret", "\u212aey"))
    return [
        # personal data and secrets as the patterns see them
        f"jane.doe+{rng.randint(0, 99)}@example.co.uk",
        "j@x.io",
        card,
        spaced,
        "-".join(card[i : i + 4] for i in range(0, len(card), 4)),
        card + rng.choice(("", "2", " 2", ".5")),
        f"+{rng.randint(1, 99)} {rng.randint(10, 99)} {rng.randint(1000, 9999)} 0958",
        f"({rng.randint(200, 999)}) {rng.randint(200, 999)}-{rng.randint(1000, 9999)}",
        f"{rng.randint(200, 999)}.{rng.randint(200, 999)}.{rng.randint(1000, 9999)}",
        "sk-proj-" + "a1B2" * 6,
        "sk-ant-api03-" + "x" * 24,
        "AKIA" + "ABCDEFGHIJKLMNOP",
        "ASIA" + "Q" * 16,
        "AIza" + "b" * 35,
        "ghp_" + "c" * 36,
        "github_pat_" + "d" * 22,
        "xoxb-" + "1234567890",
        "sk_live_" + "e" * 16,
        "rk_test_" + "f" * 16,
        rng.choice(("Bearer ", "bearer  ", "BEARER ", "BeArEr ", "bEARER ")) + "t0k3n." * 4,
        f"{key_word}: {secret}",
        f'{key_word}="{secret}"',
        f'\\"{key_word}\\": \\"{secret}\\"',
        f"the {key_word} is {secret}",
        f"secre{key_word} {secret}",
        f"monkey {secret}",
        f"api_{key_word} {secret}",
        # at the gates' boundaries
        "1234567",
        "12 34 56 7",
        "1 2 3 4 5 6 7 8",
        "1..2..3..4..5..6..7",
        "123456",
        "_" * 9 + "ghp_" + "g" * 36,
        "-" * 9 + "sk-" + "h" * 20,
        "A" * 9 + "AKIA" + "I" * 16,
        "_gh",
        "A",
        "ghp_",
        "earer",
        "EARER",
        # unicode and escapes
        "jane\\u0040example.com",
        "\\u0034111 1111 1111 1111",
        "é" * 3,
        "\u0130",  # İ: lower() makes two characters of it
        "日本語のテキスト",
        "\U0001f600",
        "١٢٣٤٥٦٧٨٩٠١٢٣",  # Arabic-Indic digits: not [0-9]
        # plain text
        "the order shipped yesterday",
        "refund policy",
        "",
    ]


_JOINS = ("", " ", "\n", "_", "-", ".", "A", '"', ":", "=", ", ")


def _generated_texts(count: int, seed: int = 22) -> list[str]:
    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        pieces = _pieces(rng)
        text = ""
        for _ in range(rng.randint(1, 6)):
            text += rng.choice(pieces) + rng.choice(_JOINS)
        texts.append(text)
        # ... and inside JSON documents, as message attributes carry them
        document: Any = [{"role": "user", "parts": [{"type": "text", "content": text}]}]
        if rng.random() < 0.3:
            document = {"arguments": json.dumps({"q": text, rng.choice(pieces): 4111}), "n": 1}
        texts.append(json.dumps(document, ensure_ascii=rng.random() < 0.5))
    return texts


def _assert_as_reference(texts: list[str], reference: Any) -> None:
    redactor = Redactor(BUILTIN_PATTERNS)
    expected = reference(texts)
    found = [redactor.redact(text) for text in texts]
    differ = [
        (text, want, got)
        for text, want, got in zip(texts, expected, found, strict=True)
        if want != got
    ]
    assert not differ, f"{len(differ)} texts differ from the reference, the first: {differ[0]}"


def test_the_golden_corpus_is_redacted_as_without_gates(reference: Any) -> None:
    texts = _golden_texts()
    assert len(texts) > 1_000
    _assert_as_reference(texts, reference)


def test_the_recorded_traffic_is_redacted_as_without_gates(reference: Any) -> None:
    texts = _recorded_texts()
    assert texts
    _assert_as_reference(texts, reference)


def test_generated_personal_data_and_edge_cases_are_redacted_as_without_gates(
    reference: Any,
) -> None:
    texts = _generated_texts(3_000)
    masked = sum("[REDACTED:" in text for text in reference(texts))
    assert masked > len(texts) // 2  # the corpus does hold what the patterns mask
    _assert_as_reference(texts, reference)


@pytest.mark.parametrize(
    ("gate", "broken"),
    [
        ("_might_hold_bearer", lambda text: "earer" in text or "EARER" in text),
        ("_might_hold_key_word", lambda text: any(w in text.lower() for w in ("key", "token"))),
        # eleven digits: North American phone numbers have ten
        ("_has_digit_run", lambda text: re.search(r"[0-9](?:[ .()+-]{0,2}[0-9]){10}", text)),
        ("_escapes", lambda text: False),
    ],
)
def test_a_gate_that_skips_a_match_is_caught(
    gate: str, broken: Any, reference: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts = _generated_texts(800)
    expected = reference(texts)
    monkeypatch.setattr(redaction, gate, broken)
    for rules in redaction._BUILTINS.values():  # the rules hold the gates themselves
        for i, rule in enumerate(rules):
            if rule.might_match.__name__ == gate:
                monkeypatch.setitem(
                    redaction._BUILTINS, rule.label, _replaced(rules, i, might_match=broken)
                )
    redactor = Redactor(BUILTIN_PATTERNS)
    assert [redactor.redact(text) for text in texts] != expected


def _replaced(rules: tuple[Any, ...], index: int, **changes: Any) -> tuple[Any, ...]:
    return (*rules[:index], replace(rules[index], **changes), *rules[index + 1 :])
