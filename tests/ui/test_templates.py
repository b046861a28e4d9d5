"""What the templates render, read as HTML without a browser: labelled controls, plural nouns."""

from __future__ import annotations

import datetime as dt
import re
from types import SimpleNamespace
from typing import Any

from assay.collector.ui.pages import HERE, templates
from assay.collector.ui.render import plural

# Pictographs and arrows used as icons (👍 👎 ⏭ ▶ ⚠ …), not letters.
ICON = re.compile("[\u2190-\u2bff\U0001f000-\U0001faff]")
CONTROL = re.compile(r"<(button|a)\b[^>]*>(.*?)</\1>", re.S)


def words(html: str) -> str:
    """A control's visible text without its tags and icons."""
    return ICON.sub("", re.sub(r"<[^>]+>|\{[{%#].*?[}%#]\}", "", html)).strip()


def test_the_grade_buttons_say_good_and_bad_beside_the_thumbs() -> None:
    grade_form = templates.get_template("_macros.html").module.grade_form  # type: ignore[attr-defined]
    call = SimpleNamespace(span_id="s1", trace_id="t1")
    for inline in (False, True):
        html = str(grade_form(call, "token", "/next", None, inline))
        labels = re.findall(r'<button[^>]*value="(\d)"[^>]*>(.*?)</button>', html)
        assert [(value, words(inner)) for value, inner in labels] == [("1", "Good"), ("0", "Bad")]
        assert all(ICON.search(inner) for _, inner in labels)  # the thumbs stay, beside the words


def test_no_control_in_any_template_is_an_icon_alone() -> None:
    """Every button and link that shows an icon (👍, ⏭, ▶ …) also says what it does."""
    bare = []
    for path in sorted((HERE / "templates").glob("*.html")):
        for _, inner in CONTROL.findall(path.read_text(encoding="utf-8")):
            if ICON.search(inner) and not words(inner):
                bare.append(f"{path.name}: {inner.strip()}")
    assert bare == []


def test_a_persons_grade_says_good_or_bad_beside_the_thumb() -> None:
    """Without an emoji font a thumb is an empty box: the word beside it carries the grade."""
    badges = templates.get_template("_macros.html").module.score_badges  # type: ignore[attr-defined]
    for value, word in ((1.0, "good"), (0.0, "bad")):
        grade = SimpleNamespace(
            source="human", name="feedback", value=value, author="ada", explanation="", error=""
        )
        html = str(badges([grade]))
        assert words(html) == word and ICON.search(html)


def test_item_counts_agree_with_their_noun() -> None:
    assert [plural(n, "item") for n in (0, 1, 2, 1000)] == [
        "0 items",
        "1 item",
        "2 items",
        "1,000 items",
    ]
    assert plural(1, "repetition") == "1 repetition"
    assert plural(2, "child", "children") == "2 children"


def test_the_dataset_pages_say_1_item_not_1_items() -> None:
    when = dt.datetime(2026, 1, 2, 3, 4, 5)
    listing: dict[str, Any] = {
        "datasets": [
            SimpleNamespace(
                name="golden",
                description="",
                versions=[("v-one", when, 1), ("v-three", when, 3)],
                updated=when,
            )
        ]
    }
    html = templates.get_template("datasets.html").render(**listing)
    assert re.findall(r"<small>([^<]*)</small>", html) == ["1 item", "3 items"]

    version = SimpleNamespace
    versions = [
        version(version="v-one", item_count=1, created_at=when, description=""),
        version(version="v-three", item_count=3, created_at=when, description=""),
    ]
    found = SimpleNamespace(name="golden", version=versions[0], versions=versions, items=[])
    html = templates.get_template("dataset.html").render(dataset=found)
    assert "— 1 item," in html
    assert "— 3 items," in html
    assert "1 items" not in html
