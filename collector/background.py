"""A collector's background thread: a named daemon thread and the event that asks it to stop.
The self-monitoring sampler, the run-level evaluation and the completed-runs writer each run
their loop in one, and `stop()` sets the event and waits for the loop to end."""

from __future__ import annotations

import threading
from collections.abc import Callable


class Background:
    def __init__(self, name: str, loop: Callable[[], None]) -> None:
        self.stopping = threading.Event()  # the loop ends once it sees this set
        self._thread = threading.Thread(target=loop, name=name, daemon=True)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self.stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
