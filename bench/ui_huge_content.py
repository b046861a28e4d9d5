"""The call page of a prompt that is one huge word, loaded in Chromium, with and without the
line-break opportunities the UI puts in long runs (`breakable`), in interleaved rounds.

Sends one LLM call whose prompt is `--chars` characters without a space (a base64 image, a
minified blob) to a running collector, then loads its call page as served (with `<wbr>`) and
the same HTML with them taken out (what the UI served before), timing the load event.
Run: `.venv/bin/python bench/ui_huge_content.py --url http://127.0.0.1:4318 [--chars 5000000]`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import httpx
from playwright.sync_api import Route, sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from assay.instrumentation import semconv as sc
from tests.collector.otlp_builders import make_request, make_span


def send_call(url: str, chars: int) -> str:
    word = "A" * chars
    messages = [{"role": "user", "parts": [{"type": "text", "content": word}]}]
    attrs = {sc.OPERATION_NAME: "chat", sc.REQUEST_MODEL: "gpt-4o-mini"}
    span = make_span(
        attrs={**attrs, sc.INPUT_MESSAGES: json.dumps(messages)}, span_id=os.urandom(8)
    )
    sent = httpx.post(
        f"{url}/v1/traces",
        content=make_request("huge-word", span).SerializeToString(),
        headers={"Content-Type": "application/x-protobuf"},
        timeout=60,
    )
    sent.raise_for_status()
    for _ in range(100):
        if httpx.get(f"{url}/api/calls/{span.span_id.hex()}", timeout=60).status_code == 200:
            return span.span_id.hex()
        time.sleep(0.2)
    raise SystemExit("the call was not stored")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="http://127.0.0.1:4318")
    parser.add_argument("--chars", type=int, default=5_000_000)
    parser.add_argument("--timeout", type=float, default=90)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    path = f"/calls/{send_call(args.url, args.chars)}"
    served = httpx.get(args.url + path, timeout=60).text
    rounds = [("with <wbr>", served), ("without", served.replace("<wbr>", ""))] * 2
    print(f"{len(served):,} bytes of HTML, {served.count('<wbr>'):,} <wbr>")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=args.chromium, headless=True)
        for label, body in rounds:
            page = browser.new_page(viewport={"width": 1300, "height": 900})

            def serve(route: Route, _: object, body: str = body) -> None:
                route.fulfill(status=200, content_type="text/html", body=body)

            page.route(f"{args.url}/bench{path}", serve)  # the stylesheet comes from the collector
            start = time.perf_counter()
            try:
                page.goto(f"{args.url}/bench{path}", wait_until="load", timeout=args.timeout * 1000)
                print(
                    f"{label:>10}: load event after {time.perf_counter() - start:.1f} s", flush=True
                )
            except Exception:
                print(f"{label:>10}: no load event within {args.timeout:.0f} s", flush=True)
            page.close()
        browser.close()


if __name__ == "__main__":
    main()
