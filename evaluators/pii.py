"""Finding personal data in text: e-mail addresses, phone numbers, card numbers, API keys.

`pii_findings(text)` counts each kind found; the `no_pii` preset in `heuristics` scores with it.
Card numbers are Luhn-checked and need an issuer prefix; phone numbers need a leading +, a
trunk 0 or North American grouping, and 9-15 digits, so order numbers and dates stay out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["ASCII_DIGITS", "PII_KINDS", "has_ascii_digit", "pii_findings"]

# Each pattern starts only at the start of a run of the characters it accepts (the
# lookbehinds), which keeps the scan linear even on long base64 or digit blobs.
_EMAIL = re.compile(
    r"(?<![\w.%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![\w-])"
)
_PHONE = re.compile(
    r"(?<![\w.:/+-])(?:"
    r"\+\d{1,3}(?:[ .-]?\(?\d{1,4}\)?){2,5}"  # international: +44 20 7946 0958, +1-555-...
    r"|(?:\(\d{3}\) ?|\d{3}[ .-])\d{3}[ .-]\d{4}"  # North American: (555) 123-4567, 555.123.4567
    r"|0\d{1,4}(?:[ -]\d{2,4}){2,4}"  # national with a trunk 0: 020 7946 0958, 06 12 34 56 78
    r")(?![\w:/-]|[.,]\d)"
)
_CARD = re.compile(r"(?<![\w.-])\d(?:[ -]?\d){12,18}(?![\w-]|[.,]\d)")
_API_KEY = re.compile(
    r"(?<![A-Za-z0-9_-])(?:"
    r"sk-(?:proj-|ant-(?:api\d\d-)?|svcacct-)?[A-Za-z0-9_-]{20,}"  # OpenAI, Anthropic
    r"|(?:AKIA|ASIA)[0-9A-Z]{16}"  # AWS access key id
    r"|gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,}"  # GitHub
    r"|xox[abposr]-[A-Za-z0-9-]{10,}"  # Slack
    r"|AIza[0-9A-Za-z_-]{35}"  # Google
    r"|(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{16,}"  # Stripe secret and restricted keys
    r"|eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"  # JWT
    r"|-----BEGIN (?:[A-Z]+ )*PRIVATE KEY-----"
    r")"
)
PII_KINDS = ("email", "phone", "card", "api_key")
_DIGITS = re.compile(r"\d")
# Cheap gates before the patterns, each a few substring scans (memchr) where a pattern costs
# 20-50 µs on a 1 KB answer even when it finds nothing: every API key above holds one of these
# characters (a dash, an underscore, the A of AKIA/ASIA/AIza, the J of eyJ), and a phone number
# or a card number needs that many digits.
_KEY_CHARACTERS = "-_AJ"
ASCII_DIGITS = "0123456789"
_PHONE_DIGITS = 9  # the fewest of a phone number (fewer looks like a date or a code)
_CARD_DIGITS = 13  # the fewest of a card number


def _luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = ord(char) - 48
        if position % 2:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def _cards(text: str) -> list[tuple[int, int]]:
    spans = []
    for found in _CARD.finditer(text):
        digits = "".join(_DIGITS.findall(found.group()))
        # Issuer prefixes 2-6 (Mastercard 2-series, Amex/Diners 3, Visa 4, Mastercard 5,
        # Discover 6) and the Luhn checksum keep order numbers and the like out.
        if _CARD_DIGITS <= len(digits) <= 19 and digits[0] in "23456" and _luhn_valid(digits):
            spans.append(found.span())
    return spans


def _phones(text: str, taken: list[tuple[int, int]]) -> list[tuple[int, int]]:
    spans = []
    for found in _PHONE.finditer(text):
        start, end = found.span()
        if any(start < t_end and t_start < end for t_start, t_end in taken):
            continue  # part of a card number
        digits = len(_DIGITS.findall(found.group()))
        if _PHONE_DIGITS <= digits <= 15:  # E.164 allows 15
            spans.append((start, end))
    return spans


def pii_findings(text: str, kinds: Iterable[str] = PII_KINDS) -> dict[str, int]:
    """How many of each kind of PII `text` holds: {"email": 2, "card": 1}; kinds found only."""
    wanted = set(kinds)
    found: dict[str, int] = {}
    if "email" in wanted and "@" in text and (emails := _EMAIL.findall(text)):
        found["email"] = len(emails)
    digits = _digits(text) if {"card", "phone"} & wanted else 0
    cards = _cards(text) if digits >= _CARD_DIGITS else []
    if "card" in wanted and cards:
        found["card"] = len(cards)
    if "phone" in wanted and digits >= _PHONE_DIGITS and (phones := _phones(text, cards)):
        found["phone"] = len(phones)
    if (
        "api_key" in wanted
        and any(char in text for char in _KEY_CHARACTERS)
        and (keys := _API_KEY.findall(text))
    ):
        found["api_key"] = len(keys)
    return found


def _digits(text: str) -> int:
    """How many digits `text` holds, as `\\d` counts them (ASCII text without any: ten memchr
    scans)."""
    if not text.isascii():  # `\d` takes every script's digits
        return len(_DIGITS.findall(text))
    if not has_ascii_digit(text):
        return 0
    return sum(map(text.count, ASCII_DIGITS))


def has_ascii_digit(text: str) -> bool:
    """Whether `text` holds one of 0-9: ten memchr scans (5,600 instructions for 2 KB), where a
    regex scans character by character (101,000). Redaction gates its digit patterns with it
    too. Written out: `any(map(text.__contains__, ...))` costs 9,900 (a slot wrapper call each)."""
    return (
        "0" in text
        or "1" in text
        or "2" in text
        or "3" in text
        or "4" in text
        or "5" in text
        or "6" in text
        or "7" in text
        or "8" in text
        or "9" in text
    )
