"""Numbers for people, the same in the UI, the CLI and the notebook displays."""

from __future__ import annotations

import datetime as dt

import pytest

from assay.evaluators.formatting import (
    count,
    duration_ms,
    iso_utc,
    money,
    number,
    percent,
    value,
    when,
    yes_no,
)


@pytest.mark.parametrize(
    ("usd", "shown"),
    [
        (0.00000008, "$0.00000008"),  # an embedding of a few tokens: not "$0"
        (0.000035, "$0.000035"),
        (0.00045, "$0.00045"),
        (0.0353, "$0.0353"),
        (1.5, "$1.5000"),
        (0, "$0"),
        (None, "—"),
    ],
)
def test_money_never_rounds_a_cost_away(usd: float | None, shown: str) -> None:
    assert money(usd) == shown


@pytest.mark.parametrize(
    ("ms", "shown"),
    [
        (0.42, "0.42 ms"),
        (16.069291999997404, "16.1 ms"),
        (67.3037, "67.3 ms"),
        (672.4, "672 ms"),
        (1200, "1.20 s"),
        (65_000, "1 min 5 s"),
        (None, "—"),
    ],
)
def test_durations(ms: float | None, shown: str) -> None:
    assert duration_ms(ms) == shown


def test_numbers_have_no_exponent() -> None:
    assert number(2.66e-06) == "0.00000266"
    assert number(1234.5678) == "1234.57" and number(0.5) == "0.5" and number(12) == "12"
    assert number(2.66e-06, significant=6) == "0.00000266"
    assert "e" not in number(1e-15)
    assert (count(1234567), percent(0.004), percent(1 / 9)) == ("1,234,567", "0.4 %", "11 %")


def test_times_say_their_zone_and_booleans_are_words() -> None:
    naive = dt.datetime(2026, 12, 3, 14, 20, 38, 123456)  # the store's columns are UTC
    assert when(naive) == "2026-12-03 14:20:38 UTC"
    paris = dt.datetime(2026, 12, 3, 15, 20, 38, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert when(paris) == "2026-12-03 14:20:38 UTC"
    assert (yes_no(True), yes_no(False), yes_no(None)) == ("yes", "no", "—")
    assert (value(True), value(0.1 + 0.2), value(naive)) == ("yes", "0.3", when(naive))


def test_machine_times_carry_their_zone() -> None:
    assert (
        iso_utc(dt.datetime(2026, 12, 3, 14, 20, 38, 260923)) == "2026-12-03T14:20:38.260923+00:00"
    )
    paris = dt.datetime(2026, 12, 3, 15, 20, 38, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert iso_utc(paris) == "2026-12-03T14:20:38+00:00"
