"""Numbers, money, durations, times and booleans as people read them: one way for the UI, the CLI
and the notebook displays alike.

Every function takes None (an unknown value) and answers "—". No scientific notation: a cost
of 8e-08 USD is "$0.00000008", never "$0" or "$8e-08".
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.text import Text

__all__ = [
    "count",
    "duration_ms",
    "iso_utc",
    "money",
    "money_of_calls",
    "number",
    "percent",
    "short_of_billed",
    "terminal_safe",
    "unpriced",
    "value",
    "when",
    "yes_no",
]

UNKNOWN = "—"

# Characters a terminal acts on rather than shows, in stored text (prompts, outputs, names are
# written by whoever talks to the model): C0 and C1 controls (ESC starts sequences that retitle
# the window, rewrite the screen or set the clipboard; CR writes over the line) and the
# bidirectional overrides that reorder what is read. Tab and newline stay.
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def terminal_safe(text: object) -> str:
    """`text` for a terminal: each control character written as its escape (`\\x1b`)."""
    return _CONTROLS.sub(lambda m: m.group().encode("unicode_escape").decode(), str(text))


def plain(value: Any, style: str = "") -> Text:
    """Stored text for a rich table cell or a message: never read as rich markup (`[link=...]`
    would hide a link, `[/x]` stopped the command), control characters written as escapes."""
    from rich.text import Text

    return Text(terminal_safe("" if value is None else value), style=style)


def _decimals_for(magnitude: float, significant: int) -> int:
    """Decimal places that show `significant` digits of a number below 1."""
    return max(0, significant - 1 - math.floor(math.log10(magnitude)))


def _plain(number: float, decimals: int) -> str:
    text = f"{number:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def number(value: Any, significant: int = 4) -> str:
    """A number in plain notation: integers whole, others to `significant` digits (at least
    the two after the point that amounts usually need), tiny ones without an exponent."""
    if value is None:
        return UNKNOWN
    if isinstance(value, bool):
        return yes_no(value)
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value):
        return str(value)
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 1:
        whole_digits = len(str(int(magnitude)))
        return _plain(value, max(2, significant - whole_digits))
    return _plain(value, min(20, _decimals_for(magnitude, significant)))


def money(value: Any) -> str:
    """US dollars: four decimals from a cent up ($1.5000), two significant digits below it
    ($0.00045, $0.00000008), "$0" for nothing at all."""
    if value is None:
        return UNKNOWN
    if value == 0:
        return "$0"
    if abs(value) >= 0.01:
        return f"${value:.4f}"
    return "$" + _plain(value, min(20, _decimals_for(abs(value), 2)))


def short_of_billed(calls: int | None, failed: int | None) -> bool:
    """Whether a cost that leaves out `calls` unpriced calls, `failed` of them failed, is a lower
    bound: an unpriced call that succeeded surely cost something (a failed one is rarely billed).
    False when either count is unknown (None): the caller says what that means."""
    return calls is not None and failed is not None and calls > failed


def unpriced(calls: int | None, failed: int | None = None) -> str:
    """A count of unpriced calls (pricing.UNPRICED_CALLS) as every view says it, "" for none: how
    many failed when that is known, and then whether the cost beside it is a lower bound (a call
    that succeeded without a price surely cost something; a failed one is rarely billed). None:
    not counted (stored before Assay counted them)."""
    if calls is None:
        return "unpriced calls not counted"
    if not calls:
        return ""
    text = f"{calls:,} call{'' if calls == 1 else 's'} unpriced"
    if failed:
        text += f", {failed} of them failed"
    if short_of_billed(calls, failed):
        text += ": the cost is a lower bound"
    return text


def money_of_calls(cost: float | None, calls: int | None, failed: int | None = None) -> str:
    """A cost summed over calls, with what it leaves out ("$0.0123 (2 calls unpriced: the cost
    is a lower bound)"); "" when there is neither a cost nor an unpriced call to speak of."""
    if cost is None and not calls:
        return ""
    note = unpriced(calls, failed)
    return f"{money(cost)} ({note})" if note else money(cost)


def duration_ms(value: Any) -> str:
    """Milliseconds: "0.42 ms", "67.3 ms", "672 ms", then seconds ("1.20 s") and minutes."""
    if value is None:
        return UNKNOWN
    if value >= 60_000:
        minutes, seconds = divmod(value / 1000, 60)
        return f"{minutes:.0f} min {seconds:.0f} s"
    if value >= 1000:
        return f"{value / 1000:.2f} s"
    if value >= 100 or value == 0:
        return f"{value:.0f} ms"
    if value >= 1:
        return f"{value:.1f} ms"
    return f"{value:.2f} ms"


def count(value: Any) -> str:
    """A whole number with thousands separated: 1,234,567."""
    return UNKNOWN if value is None else f"{value:,}"


def percent(value: Any) -> str:
    """A share in [0, 1] as a percentage: 0 %, 0.4 %, 12 %."""
    if value is None:
        return UNKNOWN
    share = value * 100
    if share == 0 or share >= 10:
        return f"{share:.0f} %"
    return f"{share:.1f} %"


def when(value: Any) -> str:
    """A moment in UTC, to the second, saying so: 2026-12-03 14:20:38 UTC. Naive datetimes are
    UTC already (the store's columns are)."""
    if value is None or value == "":
        return UNKNOWN
    if not isinstance(value, dt.datetime):
        return str(value)
    if value.tzinfo is not None:
        value = value.astimezone(dt.timezone.utc)
    return value.strftime("%Y-%m-%d %H:%M:%S UTC")


def iso_utc(moment: dt.datetime) -> str:
    """A moment for machines, zone included: 2026-12-03T14:20:38.260923+00:00. Naive datetimes
    are UTC already (the store's columns are)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=dt.timezone.utc).isoformat()
    return moment.astimezone(dt.timezone.utc).isoformat()


def yes_no(value: Any) -> str:
    return UNKNOWN if value is None else ("yes" if value else "no")


def value(item: Any) -> str:
    """Any stored value for reading: booleans yes/no, numbers plain, times in UTC."""
    if item is None or isinstance(item, bool):
        return yes_no(item)
    if isinstance(item, (int, float)):
        return number(item)
    if isinstance(item, dt.datetime):
        return when(item)
    return str(item)
