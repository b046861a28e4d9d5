"""A limit on wrong API tokens per client address, so a token cannot be guessed at the speed of
the HTTP port (hundreds of tries a second) through the API, the login form or `/api/health`.

Past MAX_FAILURES wrong tokens within WINDOW_S seconds, an address's requests that present a
token are refused with 429, unchecked (a right token too: else the refusal would still tell a
right guess from a wrong one), until the oldest of those failures is WINDOW_S old. A login
session's cookie is no token and still opens the UI, so reviewers behind the same proxy as a
guesser keep working. Counted per collector process (`--workers` each count their own)."""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable

MAX_FAILURES = 20
WINDOW_S = 60.0
# Addresses remembered at most: past it the longest-quiet ones are forgotten first, so a
# guesser with many addresses cannot grow the collector's memory without bound.
MAX_ADDRESSES = 10_000


class TokenGuesses:
    """Wrong tokens per client address over the last `window_s` seconds."""

    def __init__(
        self,
        max_failures: int = MAX_FAILURES,
        window_s: float = WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
        max_addresses: int = MAX_ADDRESSES,
    ) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.clock = clock
        self.max_addresses = max_addresses
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, address: str | None) -> int | None:
        """Seconds until `address` may present a token again; None when it may now."""
        failures = self._recent(address)
        if failures is None or len(failures) < self.max_failures:
            return None
        return max(1, math.ceil(failures[0] + self.window_s - self.clock()))

    def failed(self, address: str | None) -> None:
        """Count a wrong token from `address`."""
        key = address or ""
        failures = self._recent(key)
        if failures is None:
            failures = self._failures[key] = deque(maxlen=self.max_failures)
        failures.append(self.clock())
        self._failures.move_to_end(key)
        while len(self._failures) > self.max_addresses:
            self._failures.popitem(last=False)

    def _recent(self, address: str | None) -> deque[float] | None:
        failures = self._failures.get(address or "")
        if failures is None:
            return None
        since = self.clock() - self.window_s
        while failures and failures[0] <= since:
            failures.popleft()
        return failures
