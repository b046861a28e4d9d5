"""`assay fake-provider`: fake OpenAI and Anthropic APIs on one fixed port, to try without a key.

OpenAI's paths (`/v1/chat/completions`, `/v1/responses`, `/v1/completions`, `/v1/embeddings`,
`/v1/models`) are answered by `FakeOpenAI`, Anthropic's `/v1/messages` by `FakeAnthropic`: so
`OPENAI_BASE_URL=http://127.0.0.1:8787/v1` and `ANTHROPIC_BASE_URL=http://127.0.0.1:8787` point
the real clients at it. Any API key is accepted.

A script file scripts the answers of both, in order, first match wins (JSON)::

    [
      {"when": "capital of France", "reply": "Paris."},
      {"when": ["refund", "order #13"], "error": 429}
    ]

`when` is a text, or a list of texts that must all appear in the request's messages; `error`
answers with the provider's error for that HTTP status instead of a reply. Any request sent with
the header `x-fake-error: STATUS` fails the same way.

Standard library only, like the fakes it serves.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from assay.collector.demo.fake_anthropic import FakeAnthropic
from assay.collector.demo.fake_openai import FakeOpenAI, Script
from assay.collector.demo.fake_server import FAIL_HEADER, Failure, FakeServer, Reply, Request

__all__ = ["DEFAULT_PORT", "FAIL_HEADER", "FakeProvider", "ScriptError", "load_script"]

DEFAULT_PORT = 8787


class ScriptError(ValueError):
    """A script file that is not a list of `when` / `reply` or `error` entries."""


def load_script(path: Path) -> Script:
    """The script in a JSON file (see the module's docstring)."""
    try:
        entries = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ScriptError(f"{path}: {exc}") from exc
    if not isinstance(entries, list):
        raise ScriptError(f"{path}: a list of entries is expected")
    script: dict[str | tuple[str, ...], str | Failure] = {}
    for number, entry in enumerate(entries, start=1):
        when = entry.get("when") if isinstance(entry, dict) else None
        if isinstance(when, list) and when and all(isinstance(w, str) for w in when):
            key: str | tuple[str, ...] = tuple(when)
        elif isinstance(when, str) and when:
            key = when
        else:
            raise ScriptError(f"{path}: entry {number} needs `when`: a text or a list of texts")
        if isinstance(entry.get("reply"), str):
            script[key] = entry["reply"]
        elif isinstance(entry.get("error"), int) and 400 <= entry["error"] <= 599:
            script[key] = Failure(entry["error"])
        else:
            raise ScriptError(
                f"{path}: entry {number} needs `reply` (a text) or `error` (an HTTP status)"
            )
    return script


class FakeProvider(FakeServer):
    """OpenAI- and Anthropic-compatible on one port (`DEFAULT_PORT` unless given)."""

    thread_name = "fake-provider"

    def __init__(
        self,
        *,
        script: Script | None = None,
        latency: float = 0.0,
        chunk_latency: float = 0.0,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
    ) -> None:
        self.latency = latency
        # Never started: this server answers for them, by path.
        self.openai = FakeOpenAI(script=script, chunk_latency=chunk_latency)
        self.anthropic = FakeAnthropic(script=script)
        super().__init__(host, port)

    def reply(self, request: Request) -> Reply:
        if self.latency:
            time.sleep(self.latency)
        if request.path.rstrip("/").endswith("/v1/messages"):
            return self.anthropic.reply(request)
        return self.openai.reply(request)

    def banner(self) -> str:
        """How to point the clients at it."""
        return (
            f"Fake LLM provider on {self.address} (any API key is accepted)\n"
            f"  OpenAI:     OPENAI_BASE_URL={self.address}/v1 OPENAI_API_KEY=fake\n"
            f"  Anthropic:  ANTHROPIC_BASE_URL={self.address} ANTHROPIC_API_KEY=fake\n"
            f"  Fail a request on purpose: header '{FAIL_HEADER}: 429' (or 500, 529), "
            "or an `error` entry of --script."
        )
