"""The review UI in a real browser: list, filters, a call, grading, the review queue, escaping."""

from __future__ import annotations

import json
import os
import re

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from playwright.sync_api import Page, expect

from assay.collector.ui.render import BREAK_EVERY
from assay.instrumentation import feedback
from assay.instrumentation import semconv as sc
from tests.collector.otlp_builders import make_request, make_span
from tests.conftest import RunningCollector
from tests.ui.conftest import screenshot
from tests.ui.seed import HOSTILE, Seeded


def grades(collector: RunningCollector, span_id: str) -> list[dict[str, object]]:
    """The stored human grades of a call, after replacement (FINAL)."""
    return collector.query(
        "SELECT value, explanation, author, trace_id, source FROM assay.scores FINAL"
        f" WHERE span_id = '{span_id}' AND name = 'feedback' ORDER BY author"
    )


def set_reviewer(page: Page, name: str) -> None:
    page.fill("header form.who input[name=name]", name)
    page.click("header form.who button")


def rows(page: Page) -> list[str]:
    return page.locator("tr.call").evaluate_all("rs => rs.map(r => r.dataset.span)")


def test_the_list_filters_by_model_text_and_status(
    page: Page, collector: RunningCollector, seeded: Seeded
) -> None:
    page.goto(f"{collector.http_url}/calls?service={seeded.service}")
    assert rows(page) == seeded.span_ids  # newest first, all nine

    page.select_option("select[name=model]", "gpt-4o-mini")
    page.click("form.filters button[type=submit]")
    expect(page).to_have_url(re.compile(r"model=gpt-4o-mini"))
    # Only the filters in force are in the URL: no empty parameters.
    assert page.url.split("?", 1)[1] == f"service={seeded.service}&model=gpt-4o-mini"
    assert rows(page) == seeded.span_ids[1:6:2]

    page.goto(f"{collector.http_url}/calls?service={seeded.service}")
    page.fill("input[name=text]", "PARIS")  # case-insensitive, in prompt or response
    page.click("form.filters button[type=submit]")
    expect(page).to_have_url(re.compile(r"text=PARIS"))  # the filtered page, not the one before
    assert rows(page) == [seeded.tool_span]

    page.goto(f"{collector.http_url}/calls?service={seeded.service}&status=error")
    assert rows(page) == [seeded.error_span]
    expect(page.locator("tr.call .status")).to_have_text("error")


def test_the_list_previews_each_call_and_adds_up_the_filter(
    page: Page, collector: RunningCollector, seeded: Seeded
) -> None:
    page.goto(f"{collector.http_url}/calls?service={seeded.service}")
    newest = page.locator(f"tr[data-span='{seeded.span_ids[0]}'] td.preview")
    expect(newest.locator(".in")).to_have_text("Where is my order #1000?")
    expect(newest.locator(".out")).to_have_text("Order #1000 ships tomorrow.")
    # A conversation ending in a tool result: its last question, not the tool's JSON.
    tool = page.locator(f"tr[data-span='{seeded.tool_span}'] td.preview")
    expect(tool.locator(".in")).to_have_text("What's the weather in Paris?")
    hostile = page.locator(f"tr[data-span='{seeded.hostile_span}'] td.preview .in")
    expect(hostile).to_have_text(HOSTILE)  # text, escaped
    assert page.evaluate("window.__pwned") is None

    totals = page.locator("p.totals")
    expect(totals).to_contain_text("9 calls")
    expect(totals).to_contain_text("errors 11 % (1)")  # 1 of 9
    expect(totals).to_contain_text("p95 latency 800 ms")
    page.goto(f"{collector.http_url}/calls?service={seeded.service}&status=error")
    expect(page.locator("p.totals")).to_contain_text("1 call ")

    page.goto(f"{collector.http_url}/calls?service={seeded.service}")
    for width in (1366, 800):
        page.set_viewport_size({"width": width, "height": 900})
        wide = page.evaluate("document.documentElement.scrollWidth")
        assert wide <= width, f"{wide} px wide at {width}"
        table = page.evaluate("document.querySelector('table.calls').scrollWidth")
        room = page.evaluate("document.querySelector('.table-wrap').clientWidth")
        assert table <= room, f"the table needs {table} px of {room} at {width}"
        if width == 1366:  # one line each: the time and the model do not wrap
            for cell in ("td.when a", "td.model span"):
                lines = page.locator(f"tr.call {cell}").evaluate_all(
                    "cells => cells.map(c => c.getClientRects().length)"
                )
                assert set(lines) == {1}, (cell, lines)


def test_opening_a_call_shows_the_conversation_and_trace(
    page: Page, collector: RunningCollector, seeded: Seeded
) -> None:
    page.goto(f"{collector.http_url}/calls?service={seeded.service}&prompt_version=v3")
    page.click(f"tr[data-span='{seeded.tool_span}'] td a")
    expect(page).to_have_url(re.compile(f"/calls/{seeded.tool_span}"))
    roles = page.locator(".msg .role").all_inner_texts()
    assert [r.split()[0].lower() for r in roles] == [
        "system",
        "user",
        "assistant",
        "tool",
        "assistant",
    ]
    # Tool arguments and results are pretty-printed JSON.
    expect(page.locator(".msg.assistant pre.json").first).to_have_text(
        '{\n  "city": "Paris",\n  "unit": "C"\n}'
    )
    expect(page.locator(".msg.tool .part-title")).to_have_text("result of call_1")
    # The trace's other span (the HTTP parent) is listed, this one marked.
    expect(page.locator("table.spans tbody tr")).to_have_count(2)
    expect(page.locator("table.spans tr.this")).to_contain_text("chat gpt-4o")
    screenshot(page, "call")


def test_grading_on_the_call_page_stores_and_regrading_replaces(
    page: Page, collector: RunningCollector, seeded: Seeded
) -> None:
    span = seeded.span_ids[0]
    page.goto(f"{collector.http_url}/calls/{span}")
    set_reviewer(page, "ada")
    page.fill(".your-grade textarea[name=comment]", "wrong order number")
    page.click(".your-grade button[value='0']")
    stored = grades(collector, span)
    assert stored == [
        {
            "value": 0.0,
            "explanation": "wrong order number",
            "author": "ada",
            "trace_id": seeded.trace_ids[0],
            "source": "human",
        }
    ]
    expect(page.locator(".your-grade button[value='0']")).to_have_class(re.compile("chosen"))
    expect(page.locator("table.scores-table")).to_contain_text("wrong order number")

    page.fill(".your-grade textarea[name=comment]", "")
    page.click(".your-grade button[value='1']")  # changed my mind
    assert [(g["value"], g["explanation"]) for g in grades(collector, span)] == [(1.0, "")]
    # Another person's grade is their own row.
    page.context.clear_cookies()
    page.goto(f"{collector.http_url}/calls/{span}")
    set_reviewer(page, "bob")
    page.click(".your-grade button[value='0']")
    assert [(g["author"], g["value"]) for g in grades(collector, span)] == [
        ("ada", 1.0),
        ("bob", 0.0),
    ]


def test_grading_inline_in_the_list(
    page: Page, collector: RunningCollector, seeded: Seeded
) -> None:
    span = seeded.span_ids[1]
    page.goto(f"{collector.http_url}/calls?service={seeded.service}")
    set_reviewer(page, "cy")
    row = page.locator(f"tr[data-span='{span}']")
    row.locator("input[name=comment]").fill("fine")
    row.locator("button[value='1']").click()
    expect(row.locator(".saved")).to_have_text("saved")
    assert [(g["author"], g["value"], g["explanation"]) for g in grades(collector, span)] == [
        ("cy", 1.0, "fine")
    ]
    # Filters on grades see it.
    page.goto(f"{collector.http_url}/calls?service={seeded.service}&feedback=yes")
    assert span in rows(page)
    page.goto(f"{collector.http_url}/calls?service={seeded.service}&feedback=no")
    assert span not in rows(page)
    page.goto(f"{collector.http_url}/calls?service={seeded.service}&score_below=0.5")
    assert span not in rows(page)
    page.goto(f"{collector.http_url}/calls?service={seeded.service}")
    screenshot(page, "calls")


def test_the_review_queue_keys(page: Page, collector: RunningCollector, seeded: Seeded) -> None:
    base = f"{collector.http_url}"
    page.goto(f"{base}/review?service={seeded.service}")
    set_reviewer(page, "queue-tester")
    page.select_option("form.filters select[name=prompt_name]", "order-assistant")
    page.click("form.filters button[type=submit]")
    first, second, third = seeded.span_ids[:3]
    expect(page).to_have_url(re.compile(f"/calls/{first}\\?.*review=1"))
    screenshot(page, "review")
    page.keyboard.press("2")  # 👎, then on to the next ungraded call
    expect(page).to_have_url(re.compile(f"/calls/{second}\\?"))
    assert [g["value"] for g in grades(collector, first) if g["author"] == "queue-tester"] == [0.0]
    page.keyboard.press("j")  # older, without grading
    expect(page).to_have_url(re.compile(f"/calls/{third}\\?"))
    page.keyboard.press("k")  # back to the newer one
    expect(page).to_have_url(re.compile(f"/calls/{second}\\?"))
    page.keyboard.press("1")
    expect(page).to_have_url(re.compile(f"/calls/{third}\\?"))
    assert [g["value"] for g in grades(collector, second) if g["author"] == "queue-tester"] == [1.0]
    # Keys typed into the comment box are text, not commands.
    page.fill(".your-grade textarea[name=comment]", "")
    page.locator(".your-grade textarea[name=comment]").press("j")
    expect(page).to_have_url(re.compile(f"/calls/{third}\\?"))
    expect(page.locator(".your-grade textarea[name=comment]")).to_have_value("j")


def test_a_hostile_prompt_renders_as_text(
    page: Page, collector: RunningCollector, seeded: Seeded
) -> None:
    response = page.goto(f"{collector.http_url}/calls/{seeded.hostile_span}")
    assert response is not None
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    expect(page.locator(".msg.user .text")).to_have_text(HOSTILE)
    expect(page.locator(".msg.assistant .text")).to_have_text(f"You wrote {HOSTILE}")
    assert page.evaluate("window.__pwned") is None
    assert page.locator("main script, main img").count() == 0
    page.goto(f"{collector.http_url}/calls?service={seeded.service}&text=onerror")
    assert rows(page) == [seeded.hostile_span]
    assert page.evaluate("window.__pwned") is None


def test_a_prompt_of_one_long_word_renders_whole_with_line_breaks(
    page: Page, collector: RunningCollector
) -> None:
    """A prompt without spaces (a base64 image, a minified blob): Chromium laid out a 5 MB one
    for minutes, the call page never loaded. It is shown whole, with a line-break opportunity
    every BREAK_EVERY characters, on the call page and on its trace page's span details."""
    word = "".join(f"{i:08x}" for i in range(25_000))  # 200,000 characters, no space
    span, trace = os.urandom(8), os.urandom(16)
    attrs = {
        sc.OPERATION_NAME: "chat",
        sc.REQUEST_MODEL: "gpt-4o-mini",
        sc.INPUT_MESSAGES: json.dumps(
            [{"role": "user", "parts": [{"type": "text", "content": word}]}]
        ),
    }
    request = make_request("one-word", make_span(attrs=attrs, span_id=span, trace_id=trace))
    with grpc.insecure_channel(f"127.0.0.1:{collector.grpc_port}") as channel:
        trace_service_pb2_grpc.TraceServiceStub(channel).Export(request)
    collector.wait_for_rows(f"SELECT 1 FROM assay.llm_calls WHERE span_id = '{span.hex()}'", 1)

    page.goto(f"{collector.http_url}/calls/{span.hex()}")
    shown = page.locator(".msg.user .text")
    assert shown.evaluate("e => e.textContent") == word  # copied from the page: unchanged
    assert shown.locator("wbr").count() == len(word) // BREAK_EVERY - 1
    page.goto(f"{collector.http_url}/traces/{trace.hex()}?span={span.hex()}")
    assert page.locator(".msg.user .text").evaluate("e => e.textContent") == word


def test_bad_filters_and_unknown_calls_get_a_clear_page(
    page: Page, collector: RunningCollector
) -> None:
    response = page.goto(f"{collector.http_url}/calls?score_below=lots")
    assert response is not None and response.status == 400
    expect(page.locator("p.error")).to_contain_text("'lots' is not a number")
    response = page.goto(f"{collector.http_url}/calls/00000000deadbeef")
    assert response is not None and response.status == 404


def test_an_end_users_grade_of_the_trace_shows_on_the_call(
    page: Page, collector: RunningCollector, seeded: Seeded
) -> None:
    span, trace = seeded.span_ids[5], seeded.trace_ids[5]
    assert feedback(
        trace, 0, "the answer was <b>wrong</b>", author="end-user-1", url=collector.http_url
    )
    page.goto(f"{collector.http_url}/calls/{span}")
    row = page.locator("table.scores-table tr", has_text="end-user-1")
    expect(row).to_contain_text("the answer was <b>wrong</b>")
    expect(row).to_contain_text("👎")
    page.goto(f"{collector.http_url}/calls?service={seeded.service}&feedback=yes")
    assert span in rows(page)


def test_the_queue_says_when_everything_is_graded(
    page: Page, collector: RunningCollector, seeded: Seeded
) -> None:
    only = f"{collector.http_url}/review/next?service={seeded.service}&session_id=session-3"
    page.goto(f"{collector.http_url}/calls?service={seeded.service}")
    set_reviewer(page, "finisher")
    page.goto(only)
    expect(page).to_have_url(re.compile(f"/calls/{seeded.span_ids[3]}\\?"))
    page.keyboard.press("1")
    expect(page.locator("h1")).to_have_text("Nothing left to review")
    expect(page.locator("main")).to_contain_text("finisher has graded every call matching")
    expect(page.locator("ul.filters-shown")).to_contain_text("session id: session-3")
    page.goto(only)  # and stays so
    expect(page.locator("h1")).to_have_text("Nothing left to review")


def test_an_empty_queue_says_when_no_call_matches(
    page: Page, collector: RunningCollector, seeded: Seeded
) -> None:
    page.goto(f"{collector.http_url}/review/next?service={seeded.service}&model=no-such-model")
    expect(page.locator("h1")).to_have_text("No calls match these filters")
    expect(page.locator("ul.filters-shown")).to_contain_text("model: no-such-model")
