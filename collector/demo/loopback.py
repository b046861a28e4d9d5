"""The part every fake provider shares: an HTTP server on loopback, in daemon threads.

A fake subclasses `LoopbackServer`, names its request handler class (`handler`, which reaches
the fake as `self.server.fake`), and answers in its provider's wire format; starting,
stopping, the context manager and the address are here.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, ClassVar, TypeVar


class FakeHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog of 5 reset connections when an app opened 50 at once
    # (asyncio.gather of 50 calls: 5 to 22 of them failed with a ReadError).
    request_queue_size = 128

    def __init__(
        self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], fake: Any
    ) -> None:
        self.fake = fake
        super().__init__(address, handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that stops reading a stream and hangs up is normal, not a server error.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


_Fake = TypeVar("_Fake", bound="LoopbackServer")


class LoopbackServer:
    """Start with `start()` or `with`; `address` is `http://HOST:PORT` once started."""

    handler: ClassVar[type[BaseHTTPRequestHandler]]
    thread_name: ClassVar[str] = "fake-provider"

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._address = (host, port)
        self._server: FakeHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> str:
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self: _Fake) -> _Fake:
        if self._server is None:
            self._server = FakeHTTPServer(self._address, self.handler, self)
            # A short poll interval keeps stop() fast; the loop is idle otherwise.
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.02},
                name=self.thread_name,
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            # shutdown() waits for the serving loop to notice, up to a poll interval: a
            # connection makes the listening socket ready, so the loop looks at once (the
            # tests start and stop a fake per test, hundreds in some files).
            stopping = threading.Thread(target=self._server.shutdown, daemon=True)
            stopping.start()
            with contextlib.suppress(OSError):  # else the loop notices at its next poll
                socket.create_connection((self._address[0], self._server.server_port), 1).close()
            stopping.join()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self: _Fake) -> _Fake:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


class FakeHandler(BaseHTTPRequestHandler):
    """What every fake's request handler does alike: keep-alive HTTP/1.1 (as the clients'
    connection pools expect of the real APIs), no log line per request, chunked bodies, and
    hanging up mid-answer the way a failing proxy or API does."""

    protocol_version = "HTTP/1.1"
    # Streams are many small writes: with Nagle's algorithm on, the client would wait for
    # delayed ACKs between chunks (wall time only, but it makes long runs crawl).
    disable_nagle_algorithm = True
    server: FakeHTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # tests and the demo do not want a line per request on stderr

    def write_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%X\r\n%s\r\n" % (len(data), data))

    def end_chunks(self) -> None:
        self.wfile.write(b"0\r\n\r\n")

    def hang_up(self) -> None:
        """Close without finishing the body."""
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
