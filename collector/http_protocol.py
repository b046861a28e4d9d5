"""The HTTP port's connection protocol: uvicorn's h11 protocol with a deadline for each
request's headers, so that clients that never finish a request (slow-loris) are let go.

Uvicorn times out only a kept-alive connection that stays silent after a response, and any
byte received stops that timer: a connection that sends nothing at all, or one header line
every few seconds, was held for ever. Enough of them (one small script) take every file
descriptor of the process, and then the OTLP ports accept nothing and the spool cannot open
its next segment. Here each request must have sent all its headers within `timeout_s` of the
connection opening (or of the previous response); the body is not timed (a large OTLP export
over a slow link may take long, and `max_request_bytes` bounds it)."""

from __future__ import annotations

import asyncio

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol


class _HeaderDeadline(H11Protocol):
    timeout_s: float = 10.0
    _header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_deadline()

    def on_response_complete(self) -> None:
        # Armed before the next cycle starts: a request already pipelined behind this one
        # is parsed inside super() and must not be timed from an older start.
        self._arm_header_deadline()
        super().on_response_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_deadline()
        super().connection_lost(exc)

    def _arm_header_deadline(self) -> None:
        self._disarm_header_deadline()
        self._header_deadline = self.loop.call_later(self.timeout_s, self._headers_overdue)

    def _disarm_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_overdue(self) -> None:
        self._header_deadline = None
        # IDLE: the request line and headers are not complete yet (h11 buffers them). Once
        # they are, the request is the application's, and its response re-arms the deadline.
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()


def header_deadline_protocol(timeout_s: float) -> type[H11Protocol]:
    """The protocol class for uvicorn's `http` setting, with this deadline for headers."""
    return type("HeaderDeadlineProtocol", (_HeaderDeadline,), {"timeout_s": timeout_s})
