"""A loopback server that answers with a recorded response, as the provider sent it.

`ReplayServer(call)` answers every request with `call`'s recorded status, headers and body,
byte for byte; a streamed body goes out piece by piece (each SSE event, NDJSON line or AWS
event-stream message flushed as its own chunk), the way the provider sent it. Every request
it received is in `received`, to compare with the recorded one.
"""

from __future__ import annotations

from tests.fakes._server import FakeServer, Reply, Request
from tests.instrumentation.recordings.cassettes import RecordedCall


class ReplayServer(FakeServer):
    def __init__(self, call: RecordedCall) -> None:
        super().__init__()
        self.call = call

    def reply(self, request: Request) -> Reply:
        call = self.call
        answer = Reply(
            status=call.status, content_type=call.content_type, headers=call.headers_to_send
        )
        if call.streamed:
            answer.stream = call.pieces()
        else:
            answer.raw = call.body
        return answer
