"""Turning stored values into what a page shows: conversations, pretty JSON, and the filters
that write numbers, money, durations and times (as `assay.evaluators.formatting` writes them).

Nothing here produces HTML: templates do, with autoescaping, because prompt and response text
is written by whoever talks to the model."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup, escape

from assay.collector.records.calls import PREVIEW_CHARS
from assay.evaluators.formatting import (
    count,
    duration_ms,
    money,
    percent,
    unpriced,
    value,
    when,
    yes_no,
)

ROLES = ("system", "developer", "user", "assistant", "tool")


@dataclass
class Part:
    kind: str  # text | tool_call | tool_result | json
    text: str
    title: str = ""


@dataclass
class Message:
    role: str
    parts: list[Part] = field(default_factory=list)
    note: str = ""  # e.g. the finish reason or the author's name


def pretty_json(value: Any) -> str:
    """Indented JSON for a value, or for JSON text; other text as it is."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return value
        if isinstance(value, str):
            return value
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)


def _part(raw: Any) -> Part:
    if not isinstance(raw, dict):
        return Part("text", raw) if isinstance(raw, str) else Part("json", pretty_json(raw))
    kind = raw.get("type")
    if kind in ("text", "refusal", "reasoning") and isinstance(raw.get("content"), str):
        return Part("text", raw["content"], "" if kind == "text" else kind)
    if kind == "tool_call":
        arguments = raw.get("arguments")
        return Part(
            "tool_call",
            pretty_json(arguments if arguments is not None else {}),
            f"calls {raw.get('name') or 'a tool'}" + (f" ({raw['id']})" if raw.get("id") else ""),
        )
    if kind == "tool_call_response":
        title = f"result of {raw['id']}" if raw.get("id") else "tool result"
        return Part("tool_result", pretty_json(raw.get("response")), title)
    return Part("json", pretty_json(raw), str(kind or ""))


def _message(raw: Any) -> Message:
    if not isinstance(raw, dict):
        return Message("unknown", [_part(raw)])
    role = str(raw.get("role") or "unknown")
    if isinstance(raw.get("parts"), list):
        parts = [_part(p) for p in raw["parts"]]
    elif "content" in raw:  # older shapes: {"role", "content"}
        content = raw["content"]
        parts = [_part(content)] if not isinstance(content, list) else [_part(p) for p in content]
    else:
        parts = [_part({k: v for k, v in raw.items() if k != "role"})]
    notes = [f"finish: {raw['finish_reason']}"] if raw.get("finish_reason") else []
    if raw.get("name"):
        notes.insert(0, str(raw["name"]))
    return Message(role, parts, ", ".join(notes))


def conversation(
    system_instructions: str, input_messages: str, output_messages: str
) -> list[Message]:
    """The whole exchange in order: system instructions, the prompt, then the response."""
    messages: list[Message] = []
    for text, default_role in (
        (system_instructions, "system"),
        (input_messages, "user"),
        (output_messages, "assistant"),
    ):
        if not text:
            continue
        try:
            value = json.loads(text)
        except ValueError:  # not JSON: show it as the text it is
            messages.append(Message(default_role, [Part("text", text)]))
            continue
        if default_role == "system":  # a list of parts, not of messages
            parts = value if isinstance(value, list) else [value]
            messages.append(Message("system", [_part(p) for p in parts]))
        elif isinstance(value, list):
            messages.extend(_message(m) for m in value)
        else:
            messages.append(_message(value))
    return messages


def role_class(role: str) -> str:
    return role if role in ROLES else "other"


def plural(value: int, noun: str, nouns: str = "") -> str:
    """'1 item', '3 items', '1,000 items': the count and the noun agreeing with it."""
    return f"{value:,} {noun if value == 1 else nouns or noun + 's'}"


def preview(text: Any, limit: int = PREVIEW_CHARS) -> str:
    """A message on one line, cut at `limit` characters with an ellipsis."""
    flat = " ".join(str(text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def score_text(value: Any) -> str:
    return "—" if value is None else f"{value:.2f}"


# Deeper spans are indented no further (the depth is written beside their name instead): a
# runaway recursion must not push the waterfall's names out of the window.
MAX_INDENT = 16


@dataclass(slots=True)
class WaterfallRow:
    """One span's row of the trace page, its text and geometry made once here: a page of 1,000
    spans renders in a few milliseconds this way, where filters and lookups per cell took
    ten times as long."""

    span_id: str
    name: str
    kind: str
    status: str
    depth: int
    indent: str  # CSS padding-left
    bar: str  # CSS left and width of the duration bar, in % of the trace
    timing: str  # "+offset, duration"
    duration: str
    tokens: str
    cost: str
    chosen: bool


def waterfall(spans: list[dict[str, Any]], chosen: str) -> list[WaterfallRow]:
    """The trace page's rows of spans placed on the time line (records/traces.get_trace)."""
    return [
        WaterfallRow(
            span_id=s["span_id"],
            name=s["name"],
            kind=s["kind"],
            status=s["status"],
            depth=s["depth"],
            indent=f"padding-left: {0.3 + min(s['depth'], MAX_INDENT) * 0.9:.1f}em",
            bar=f"left: {s['left_pct']:.3f}%; width: {s['width_pct']:.3f}%",
            timing=f"+{duration_ms(s['offset_ms'])}, {duration_ms(s['duration_ms'])}",
            duration=duration_ms(s["duration_ms"]),
            tokens=f"{count(s['input_tokens'])} / {count(s['output_tokens'])}" if s["llm"] else "",
            cost=money(s["cost_usd"]) if s["llm"] else "",
            chosen=s["span_id"] == chosen,
        )
        for s in spans
    ]


# Chromium lays out a word without spaces (a base64 image, a minified blob, a long id) at tens
# of µs per character in the UI's font: a prompt of one 5 MB word held the call page for
# minutes. A line-break opportunity (<wbr>) every so many characters of such a run takes it
# to about 2 s; the text copied from the page is unchanged.
BREAK_EVERY = 80
_UNBROKEN = re.compile(rf"\S{{{BREAK_EVERY + 1},}}")


def breakable(text: object) -> Markup:
    """`text` escaped, with a <wbr> every BREAK_EVERY characters of a run without spaces."""
    text = "" if text is None else str(text)
    out: list[str] = []
    end = 0
    for run in _UNBROKEN.finditer(text):
        out.append(str(escape(text[end : run.start()])))
        word = run.group()
        out.append(
            "<wbr>".join(
                str(escape(word[i : i + BREAK_EVERY])) for i in range(0, len(word), BREAK_EVERY)
            )
        )
        end = run.end()
    out.append(str(escape(text[end:])))
    return Markup("".join(out))


FILTERS = {
    "breakable": breakable,
    "when": when,
    "money": money,
    "millis": duration_ms,
    "value": value,
    "yes_no": yes_no,
    "count": count,
    "score": score_text,
    "plural": plural,
    "unpriced": unpriced,
    "preview": preview,
    "percent": percent,
    "pretty_json": pretty_json,
    "role_class": role_class,
}
