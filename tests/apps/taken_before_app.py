"""One call made after the steps of an order, in a fresh interpreter: which orders of importing
the client, building it, taking its method and `instrument()` make the call's span.

Run as `python -m tests.apps.taken_before_app <openai|anthropic> <sync|async> <step,step,...>`
with `BASE_URL` the client's local fake. Steps: `import` (the client library), `class` (the
resource class's `create` taken off the class), `build` (a client), `bind`
(`create = client.<resource>.create`), `raw` (`client.<resource>.with_raw_response` built),
`instrument`. The call goes through what was taken last: the class's function, the raw
response's `create`, the bound method, else the resource. Prints, as JSON, the spans made and
Assay's warnings.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from typing import Any

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


class _Warnings(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def main(library: str, mode: str, steps: list[str]) -> None:
    is_async = mode == "async"
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    warnings = _Warnings()
    logging.getLogger("assay.instrumentation").addHandler(warnings)
    taken: dict[str, Any] = {}
    for step in steps:
        if step == "instrument":
            from assay.instrumentation import instrument

            instrument(tracer_provider=provider)
        elif step == "import":
            taken["library"] = __import__(library)
        elif step == "class":
            if library == "openai":
                from openai.resources.chat import completions as module
            else:
                from anthropic.resources.messages import messages as module  # type: ignore[no-redef]
            name = ("Async" if is_async else "") + (
                "Completions" if library == "openai" else "Messages"
            )
            taken["call"] = getattr(module, name).create
        elif step == "build":
            names = {
                "openai": ("OpenAI", "AsyncOpenAI"),
                "anthropic": ("Anthropic", "AsyncAnthropic"),
            }
            client = getattr(taken["library"], names[library][is_async])(
                base_url=os.environ["BASE_URL"], api_key="k", max_retries=0
            )
            taken["resource"] = client.chat.completions if library == "openai" else client.messages
        elif step == "bind":
            taken["call"] = taken["resource"].create
        elif step == "raw":
            taken["call"] = taken["resource"].with_raw_response.create
    request: dict[str, Any] = {"model": "gpt-4o-mini", "messages": QUESTION}
    if library == "anthropic":
        request = {"model": "claude-sonnet-4-5", "max_tokens": 50, "messages": QUESTION}
    if "class" in steps:  # the class's function, called on the resource
        result = taken["call"](taken["resource"], **request)
    else:
        result = taken.get("call", taken["resource"].create)(**request)
    if is_async:
        asyncio.run(result)
    spans = [span.name for span in exporter.get_finished_spans()]
    print(json.dumps({"spans": spans, "warnings": warnings.messages}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3].split(","))
