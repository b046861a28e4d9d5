"""The progress of an experiment run: rich in a terminal, one updating HTML bar in Jupyter."""

from __future__ import annotations

import html
import sys
import time
from typing import Any, Protocol

__all__ = ["ProgressDisplay", "in_jupyter", "progress_display"]

_JUPYTER_REFRESH_S = 0.25  # each update is a message to the browser: a few per second suffice


class ProgressDisplay(Protocol):
    def start(self, title: str, total: int) -> None: ...

    def advance(self, failed: bool) -> None: ...

    def stop(self) -> None: ...


def in_jupyter() -> bool:
    """Running in a Jupyter kernel (notebook, lab, nbclient): it renders HTML, not a terminal."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    shell = ipython.get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


class _Silent:
    def start(self, title: str, total: int) -> None:
        pass

    def advance(self, failed: bool) -> None:
        pass

    def stop(self) -> None:
        pass


class _RichProgress:
    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[failed]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
        )
        self._task: Any = None
        self._failed = 0

    def start(self, title: str, total: int) -> None:
        self._task = self._progress.add_task(title, total=total, failed="")
        self._progress.start()

    def advance(self, failed: bool) -> None:
        self._failed += failed
        label = f"[red]{self._failed} failed[/red]" if self._failed else ""
        self._progress.update(self._task, advance=1, failed=label)

    def stop(self) -> None:
        self._progress.stop()


class _JupyterProgress:
    """An HTML `<progress>` bar updated in place (one display id), with no widget library."""

    def __init__(self) -> None:
        self._handle: Any = None
        self._title = ""
        self._total = 0
        self._done = 0
        self._failed = 0
        self._started = 0.0
        self._last = 0.0

    def start(self, title: str, total: int) -> None:
        from IPython.display import display

        self._title, self._total, self._started = title, total, time.monotonic()
        self._handle = display(self._html(), display_id=True)

    def advance(self, failed: bool) -> None:
        self._done += 1
        self._failed += failed
        now = time.monotonic()
        if now - self._last >= _JUPYTER_REFRESH_S or self._done == self._total:
            self._last = now
            self._update()

    def stop(self) -> None:
        self._update()

    def _update(self) -> None:
        if self._handle is not None:
            from IPython.display import HTML

            self._handle.update(HTML(self._html().data))

    def _html(self) -> Any:
        from IPython.display import HTML

        failed = (
            f' · <span style="color:#cf222e">{self._failed} failed</span>' if self._failed else ""
        )
        elapsed = time.monotonic() - self._started if self._started else 0.0
        return HTML(
            f"<div><b>{html.escape(self._title)}</b> "
            f'<progress value="{self._done}" max="{max(self._total, 1)}" style="width:40%">'
            f"</progress> {self._done}/{self._total}{failed} · {elapsed:.1f}s</div>"
        )


def progress_display(enabled: bool = True) -> ProgressDisplay:
    if not enabled:
        return _Silent()
    if in_jupyter():
        return _JupyterProgress()
    return _RichProgress()
