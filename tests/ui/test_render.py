"""How stored messages become the conversation a call page shows."""

from __future__ import annotations

import json

from assay.collector.ui.render import conversation, money, percent, pretty_json, preview


def test_the_conventions_shape_in_order_with_system_instructions_first() -> None:
    shown = conversation(
        json.dumps([{"type": "text", "content": "Be brief."}]),
        json.dumps([{"role": "user", "parts": [{"type": "text", "content": "Hi"}]}]),
        json.dumps(
            [
                {
                    "role": "assistant",
                    "parts": [{"type": "refusal", "content": "No."}],
                    "finish_reason": "stop",
                }
            ]
        ),
    )
    assert [(m.role, [p.text for p in m.parts], m.note) for m in shown] == [
        ("system", ["Be brief."], ""),
        ("user", ["Hi"], ""),
        ("assistant", ["No."], "finish: stop"),
    ]
    assert shown[2].parts[0].title == "refusal"


def test_older_shapes_and_plain_text_still_read() -> None:
    shown = conversation(
        "",
        json.dumps([{"role": "user", "content": "plain content"}]),
        "not JSON at all",
    )
    assert [(m.role, m.parts[0].kind, m.parts[0].text) for m in shown] == [
        ("user", "text", "plain content"),
        ("assistant", "text", "not JSON at all"),
    ]


def test_unknown_parts_are_shown_as_indented_json() -> None:
    (message,) = conversation(
        "", json.dumps([{"role": "user", "parts": [{"type": "image", "uri": "x.png"}]}]), ""
    )
    assert message.parts[0].kind == "json"
    assert message.parts[0].text == '{\n  "type": "image",\n  "uri": "x.png"\n}'


def test_numbers_for_people() -> None:
    assert pretty_json('{"a":1}') == '{\n  "a": 1\n}'
    assert pretty_json("just text") == "just text"
    assert (money(None), money(0.00045), money(1.5)) == ("—", "$0.00045", "$1.5000")


def test_previews_and_percentages() -> None:
    assert preview("  Where is\\n my   order?  ".replace("\\n", "\n")) == "Where is my order?"
    cut = preview("word " * 100, limit=20)
    assert len(cut) == 20 and cut.endswith("…")
    assert preview(None) == ""
    assert (percent(0), percent(0.004), percent(1 / 9), percent(None)) == (
        "0 %",
        "0.4 %",
        "11 %",
        "—",
    )
