"""A loopback server that answers with a recorded response, as the provider sent it.

`ReplayServer(call)` answers every request with `call`'s recorded status, headers and body;
a streamed body goes out piece by piece (each SSE event, NDJSON line or AWS event-stream
message flushed as its own chunk), the way the provider sent it. Every request it received is
in `requests`, to compare with the recorded one.
"""

from __future__ import annotations

import json

from tests.fakes._server import FakeServer, Reply, Request
from tests.instrumentation.recordings.cassettes import JSON, RecordedCall


class ReplayServer(FakeServer):
    def __init__(self, call: RecordedCall) -> None:
        super().__init__()
        self.call = call

    def reply(self, request: Request) -> Reply:
        call = self.call
        content_type = call.content_type
        if call.streamed or not content_type.startswith(JSON):
            return Reply(
                status=call.status,
                stream=call.pieces(),
                content_type=content_type,
                headers=call.headers_to_send,
            )
        return Reply(
            status=call.status,
            body=json.loads(call.body),
            content_type=content_type,
            headers=call.headers_to_send,
        )
