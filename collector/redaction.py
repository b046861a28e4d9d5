"""Redaction: built-in and custom patterns masked in prompts, responses and logs, and the
`RedactionConfig` that names them.

A match becomes `[REDACTED:<name>]` (`custom` for the user's own regexes). Values holding JSON
(the message attributes do) are redacted value by value inside the document, so the stored text
stays valid JSON whatever the pattern: strings (and JSON documents inside strings, as tool call
arguments often are), object keys, and integers (a card number sent as a JSON number becomes the
string `"[REDACTED:card]"`). `\\u0040`-style escapes are read as the characters they stand for.
Which attributes hold content, and where in an OTLP request this runs, is
`receivers/content.py`: in the receiver, before anything reaches the spool.

Speed: CPython's `re` scans a long alternation position by position (~0.7 ms per 4 KB for the
built-ins as one regex), so each pattern is instead a rule with a cheap gate (a few memchr or
substring scans) and runs only past it; the rules whose every match holds a digit share one scan
for it. A gate is a necessary condition for a match, never more: tests/collector/
test_redaction_gates.py compares the redactor with every pattern applied to every value.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

from assay.evaluators.pii import ASCII_DIGITS, has_ascii_digit

# --- the patterns ---------------------------------------------------------------------------------
# Lookbehinds come after the first character, so every regex starts with a character class.
_EMAIL = re.compile(
    r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![A-Za-z0-9-])"
)
# 13–19 digits, single spaces or dashes between them, issuer digit 2–6; Luhn-checked.
_CARD = re.compile(r"[2-6](?<![0-9.].)[0-9](?:[ -]?[0-9]){11,17}(?![0-9]|\.[0-9])")
# International (+ and 8–15 digits) or North-American with separators; bare runs of digits
# (order ids, timestamps) and dotted quads are left alone.
_PHONE = re.compile(
    r"[+(0-9](?<![A-Za-z0-9_+./-].)"
    r"(?:(?<=\+)[0-9](?:[ .()-]{0,2}[0-9]){7,14}"
    r"|(?<=\()[0-9]{3}\)[ .-]?[0-9]{3}[ .-][0-9]{4}"
    r"|(?<=[0-9])[0-9]{2}[ .-][0-9]{3}[ .-][0-9]{4})"
    r"(?![0-9]|[.-][0-9])"
)
# Keys with a known shape: OpenAI, Anthropic, AWS access key ids, GitHub, Slack, Google, Stripe.
_API_KEY = re.compile(
    r"[sAgxr](?<![A-Za-z0-9].)"
    r"(?:(?<=s)k-(?:proj-|svcacct-|ant-(?:api|admin)[0-9]{2}-)?[A-Za-z0-9_-]{20,}"
    r"|(?<=A)(?:KIA|SIA)[0-9A-Z]{16}|(?<=A)Iza[0-9A-Za-z_-]{35}"
    r"|(?<=g)h[pousr]_[A-Za-z0-9]{36,}|(?<=g)ithub_pat_[A-Za-z0-9_]{22,}"
    r"|(?<=x)ox[abprs]-[A-Za-z0-9-]{10,}"
    r"|(?<=[rs])k_(?:live|test)_[A-Za-z0-9]{16,})"
    r"(?![A-Za-z0-9])"
)
# What each key shape above starts with, grouped by a character the start holds: a test for one
# character runs at memchr speed (1,300 instructions per 2 KB), a substring test at 7,000-10,000,
# a regex scan at ~100,000. Each start is compared at the first few places its character is.
# (Slack's `xox?-` is under its dash: an `x` is in most JSON documents, as `"text"`.)
_API_KEY_STARTS = {
    "-": ("sk-", "xoxa-", "xoxb-", "xoxp-", "xoxr-", "xoxs-"),
    "A": ("AKIA", "ASIA", "AIza"),
    "_": ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "k_live_", "k_test_"),
}


def _around(char: str, starts: tuple[str, ...]) -> tuple[tuple[int, int, frozenset[str]], ...]:
    """`starts` as what to compare around a place `char` is: (characters before it, length,
    the starts of that shape)."""
    shapes: dict[tuple[int, int], set[str]] = {}
    for start in starts:
        shapes.setdefault((start.index(char), len(start)), set()).add(start)
    return tuple((offset, length, frozenset(same)) for (offset, length), same in shapes.items())


_STARTS_AROUND = {char: _around(char, starts) for char, starts in _API_KEY_STARTS.items()}
# The characters right before `char` in its starts (`ghp_`: `p`), when no start begins with it:
# a place whose character before is none of them starts no key (`finish_reason`: `h`).
_BEFORE = {
    char: frozenset(start[start.index(char) - 1] for start in starts)
    for char, starts in _API_KEY_STARTS.items()
    if all(start.index(char) > 0 for start in starts)
}
_BEARER = re.compile(r"(?P<keep>[Bb](?<![A-Za-z0-9].)(?i:earer)[ ]+)[A-Za-z0-9._~+/-]{16,}=*")
# "key: X", "token = X", "api_key": "X", "secret is X" (a backslash may escape the quotes when
# the text is raw JSON); the secret has 32+ characters and a digit, so long names do not match.
_KEY_WORDS = ("key", "token", "secret")
_SECRET = r"(?=[A-Za-z+/_-]*[0-9])[A-Za-z0-9+/_-]{32,}={0,2}(?![A-Za-z0-9+/_-])"
_KEY_VALUE_AT = re.compile(
    r"(?i:key|token|secret)(?:[ ]+is[ ]+|(?:\\?[\"'])?[ ]*[:=][ ]*(?:\\?[\"'])?|[ ]+)"
    rf"(?P<secret>{_SECRET})"
)
_KEY_WORD = re.compile(r"(?i:key|token|secret)")
_KEY_WORD_AHEAD = re.compile(r"(?=(?i:key|token|secret))")
_KEY_NAME = re.compile(r"(?i:key|token|secret)$")
_BARE_SECRET = re.compile(_SECRET)
# On raw JSON text: 7+ digits with separators, the least a card or a phone number shows there.
_DIGIT_RUN = re.compile(r"[0-9](?:[ .()+-]{0,2}[0-9]){6}")


@dataclass(frozen=True)
class _Rule:
    label: str
    mask: Callable[[str], str]  # the text with every match of this rule's pattern masked
    # A necessary condition for a match, on the text and on the raw text of a JSON document
    # (checked before it is decoded): cheap scans that let most texts skip the pattern.
    might_match: Callable[[str], bool]
    min_length: int
    needs_digit: bool = False  # every match holds an ASCII digit (one scan for all such rules)


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _mask_card(match: re.Match[str]) -> str:
    # The match is greedy: for a card followed by more digits ("4111... 2"), try shorter
    # digit prefixes, longest first.
    text = match.group(0)
    digits = [i for i, char in enumerate(text) if char.isdigit()]
    for count in range(min(len(digits), 19), 12, -1):
        if luhn_valid("".join(text[i] for i in digits[:count])):
            return "[REDACTED:card]" + text[digits[count - 1] + 1 :]
    return text


def _email(text: str) -> str:
    return _EMAIL.sub("[REDACTED:email]", text)


def _card(text: str) -> str:
    return _CARD.sub(_mask_card, text)


def _phone(text: str) -> str:
    return _PHONE.sub("[REDACTED:phone]", text)


def _key_shape(text: str) -> str:
    return _API_KEY.sub("[REDACTED:api_key]", text)


def _bearer(text: str) -> str:
    return _BEARER.sub(r"\g<keep>[REDACTED:api_key]", text)


def _might_hold_key_shape(text: str) -> bool:
    # a loop, not any(...): a generator costs ~0.4 µs a call
    for char in _API_KEY_STARTS:  # noqa: SIM110
        if char in text and _starts_around(text, char):
            return True
    return False


# Past this many occurrences of a key shape's character, its starts are looked for by substring
# scans (a few µs per 2 KB each) rather than at each occurrence.
_FEW_OCCURRENCES = 8


def _starts_around(text: str, char: str) -> bool:
    """Whether a key shape's start holding `char` is in `text`: looked for at the few places
    `char` is (JSON documents of messages hold a `_` or two, as `finish_reason`)."""
    at = text.find(char)
    before = _BEFORE.get(char)
    for _ in range(_FEW_OCCURRENCES):
        if at < 0:
            return False
        if before is None or (at and text[at - 1] in before):
            for offset, length, starts in _STARTS_AROUND[char]:
                if at >= offset and text[at - offset : at - offset + length] in starts:
                    return True
        at = text.find(char, at + 1)
    return at >= 0 and any(start in text for start in _API_KEY_STARTS[char])


def _might_hold_bearer(text: str) -> bool:
    # `(?i:earer)`: in any case, but text without a capital E, A or R holds it only in lower case.
    if "earer" in text:
        return True
    if not ("E" in text or "A" in text or "R" in text):
        return False
    return "earer" in text.lower()


def _key_values(text: str) -> str:
    # Anchored at each key word rather than scanned: the words are frequent in LLM text,
    # secrets after them are not.
    starts = sorted(i for i in _key_word_starts(text) if not _inside_word(text, i))
    pieces, done = [], 0
    for start in starts:
        if start < done:
            continue
        match = _KEY_VALUE_AT.match(text, start)
        if match:
            pieces += [text[done : match.start("secret")], "[REDACTED:api_key]"]
            done = match.end()
    return "".join(pieces) + text[done:] if pieces else text


def _key_word_starts(text: str) -> Iterable[int]:
    """Where a key word starts, overlapping ones too (`secreToken`)."""
    if text.isascii():  # then case-insensitive is lower-case, position for position
        lowered = text.lower()
        return (i for word in _KEY_WORDS for i in _occurrences(lowered, word))
    # `(?i)` also takes the Kelvin sign for k and a long s for s, and lower() may change lengths
    return (match.start() for match in _KEY_WORD_AHEAD.finditer(text))


def _occurrences(text: str, word: str) -> Iterable[int]:
    at = text.find(word)
    while at >= 0:
        yield at
        at = text.find(word, at + 1)


def _inside_word(text: str, at: int) -> bool:
    """`monkey`, `keyboard`: a key word preceded by a letter is another word (but `api_key`,
    `apiKey`, `x-api-key` are key words)."""
    return at > 0 and text[at - 1].islower() and text[at].islower()


def _might_hold_key_word(text: str) -> bool:
    if text.isascii():
        lowered = text.lower()
        return any(word in lowered for word in _KEY_WORDS)
    return _KEY_WORD.search(text) is not None


def _has_digit_run(raw: str) -> bool:
    # Is there a digit at all (`needs_digit`, ten memchr scans), are there seven (one pass in C)?
    data = raw.encode("utf-8", "surrogatepass")
    if len(data) - len(data.translate(None, _DIGIT_BYTES)) < 7:
        return False
    return _DIGIT_RUN.search(raw) is not None


_DIGIT_BYTES = ASCII_DIGITS.encode()

_API_KEY_RULES = (
    _Rule("api_key", _key_shape, _might_hold_key_shape, 20),
    _Rule("api_key", _bearer, _might_hold_bearer, 20),
    # every secret after a key word has a digit (`_SECRET`)
    _Rule("api_key", _key_values, _might_hold_key_word, 20, needs_digit=True),
)
_BUILTINS: dict[str, tuple[_Rule, ...]] = {
    "email": (_Rule("email", _email, lambda text: "@" in text, 6),),
    "card": (_Rule("card", _card, _has_digit_run, 13, needs_digit=True),),
    "phone": (_Rule("phone", _phone, _has_digit_run, 10, needs_digit=True),),
    "api_key": _API_KEY_RULES,
}
BUILTIN_PATTERNS: tuple[str, ...] = tuple(_BUILTINS)


def _scoped_flags(pattern: str) -> str:
    """`(?i)abc` → `(?i:abc)`: global flags must start the whole regex, and custom patterns
    are joined into one."""
    match = re.match(r"\(\?([aiLmsux]+)\)", pattern)
    return f"(?{match.group(1)}:{pattern[match.end() :]})" if match else pattern


def _custom_rule(patterns: list[str]) -> _Rule:
    regex = re.compile("|".join(f"(?:{_scoped_flags(p)})" for p in patterns))

    def mask(text: str) -> str:
        return regex.sub("[REDACTED:custom]", text)

    # Whether a custom pattern can match decoded text cannot be told from the raw JSON.
    return _Rule("custom", mask, lambda raw: True, 1)


class RedactionConfig(BaseModel):
    """What the collector masks: built-in pattern names and the user's own regexes
    (`redact` and `redact_patterns` in assay.yaml, `ASSAY_REDACT`, `ASSAY_REDACT_PATTERNS`)."""

    model_config = ConfigDict(frozen=True)

    builtins: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()

    @field_validator("builtins")
    @classmethod
    def _known(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [name for name in value if name not in _BUILTINS]
        if unknown:
            raise ValueError(
                f"unknown redaction pattern(s) {', '.join(unknown)}: "
                f"choose from {', '.join(BUILTIN_PATTERNS)}"
            )
        return value

    @field_validator("patterns")
    @classmethod
    def _valid(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for pattern in value:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"redact pattern {pattern!r} is not a valid regex: {exc}") from exc
        if value:
            try:  # they are combined into one regex, where numbered backreferences break
                _custom_rule(list(value))
            except re.error as exc:
                raise ValueError(f"redact_patterns cannot be combined: {exc}") from exc
        return value

    @property
    def enabled(self) -> bool:
        return bool(self.builtins or self.patterns)


# `\u0040`: an escaped character a pattern may need (not a quote, backslash or control character,
# so unescaping never changes the structure of the text around it).
_UNICODE_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")


def _escapes(text: str) -> bool:
    # A backslash first: one memchr scan, where the two-character search costs ~2 µs per 2 KB.
    return "\\" in text and "\\u" in text


def _unescape(match: re.Match[str]) -> str:
    char = chr(int(match.group(1), 16))
    return char if char.isprintable() and char not in '"\\' else match.group(0)


class Redactor:
    """Masks the built-in patterns named in `builtins` and the regexes in `patterns`."""

    def __init__(self, builtins: Iterable[str] = (), patterns: Iterable[str] = ()) -> None:
        rules: list[_Rule] = []
        for name in dict.fromkeys(builtins):
            if name not in _BUILTINS:
                raise ValueError(
                    f"unknown redaction pattern {name!r}: choose from {BUILTIN_PATTERNS}"
                )
            rules += _BUILTINS[name]
        custom = list(patterns)
        if custom:
            rules.append(_custom_rule(custom))
        if not rules:
            raise ValueError("a Redactor needs at least one pattern")
        self._rules = tuple(rules)
        # card and phone share theirs: each distinct gate runs once per document
        self._gates = tuple(dict.fromkeys((rule.might_match, rule.needs_digit) for rule in rules))
        self.names = tuple(dict.fromkeys(rule.label for rule in rules))
        self._min_length = min(rule.min_length for rule in rules)
        self._secrets_under_keys = "api_key" in self.names

    @classmethod
    def from_config(cls, config: RedactionConfig) -> Redactor | None:
        """The config's redactor, or None when redaction is off (then it costs nothing)."""
        if not config.enabled:
            return None
        return cls(config.builtins, config.patterns)

    # --- one value -------------------------------------------------------------------------------
    def redact(self, text: str) -> str:
        """`text` with every match masked; a JSON document stays valid JSON."""
        if len(text) < self._min_length:
            return text
        first = text[:1]
        if first.isspace():
            first = text.lstrip()[:1]
        if first not in ("[", "{"):
            return self._plain(text)
        # Escaped characters hide from the gates, which read the raw text.
        if not _escapes(text) and not self._might_match(text):
            return text
        try:
            document = json.loads(text)
        except (ValueError, RecursionError):
            return self._plain(text)
        redacted, changed = self._walk(document)
        if not changed:
            return text
        return json.dumps(redacted, ensure_ascii=False, separators=(",", ":"))

    def redact_number(self, value: float) -> str | None:
        """The mask of a number whose digits match (a card number sent as a number), else None."""
        if isinstance(value, float):
            if not math.isfinite(value) or not value.is_integer() or abs(value) >= 1e20:
                return None
            value = int(value)
        digits = str(value)
        if len(digits) < self._min_length:
            return None
        redacted = self._plain(digits)
        return redacted if redacted != digits else None

    def _might_match(self, raw: str) -> bool:
        digit: bool | None = None
        for gate, needs_digit in self._gates:
            if needs_digit:
                if digit is None:
                    digit = has_ascii_digit(raw)
                if not digit:
                    continue
            if gate(raw):
                return True
        return False

    def _plain(self, text: str) -> str:
        if _escapes(text):
            unescaped = _UNICODE_ESCAPE.sub(_unescape, text)
            if unescaped != text:
                redacted = self._apply(unescaped)
                return text if redacted == unescaped else redacted
        return self._apply(text)

    def _apply(self, text: str) -> str:
        # Masking only takes characters away from what a gate looks for (a mask holds no digit),
        # so a gate that was shut on the text before stays shut after.
        digit: bool | None = None
        gate: Callable[[str], bool] | None = None
        open_ = False
        for rule in self._rules:
            if len(text) < rule.min_length:
                continue
            if rule.needs_digit:
                if digit is None:
                    digit = has_ascii_digit(text)
                if not digit:
                    continue
            if rule.might_match is not gate:  # card and phone share one
                gate = rule.might_match
                open_ = gate(text)
            if open_:
                text = rule.mask(text)
        return text

    def _walk(self, value: Any) -> tuple[Any, bool]:
        if isinstance(value, str):
            redacted = self.redact(value)  # a JSON document inside a string is walked too
            return redacted, redacted != value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            masked = self.redact_number(value)
            return (value, False) if masked is None else (masked, True)
        if isinstance(value, list):
            items = [self._walk(item) for item in value]
            return [item for item, _ in items], any(changed for _, changed in items)
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            any_changed = False
            for key, item in value.items():
                if (
                    self._secrets_under_keys
                    and isinstance(item, str)
                    and _secret_under_key(key, item)
                ):
                    masked, changed = "[REDACTED:api_key]", True
                else:
                    masked, changed = self._walk(item)
                new_key = self._plain(key) if len(key) >= self._min_length else key
                if new_key != key:
                    changed = True
                    new_key = _unique(new_key, out)
                out[new_key] = masked
                any_changed |= changed
            return out, any_changed
        return value, False


def _unique(key: str, taken: dict[str, Any]) -> str:
    """Two keys masked alike must not overwrite each other's values."""
    candidate, number = key, 1
    while candidate in taken:
        number += 1
        candidate = f"{key}#{number}"
    return candidate


def _secret_under_key(key: str, value: str) -> bool:
    """{"api_key": "0123..."}: the key says what the value is, so the value alone is masked."""
    return _KEY_NAME.search(key) is not None and _BARE_SECRET.fullmatch(value) is not None
