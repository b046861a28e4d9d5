"""Helpers the dialect mappings share: renaming by table, indexed attributes, message shapes.

Every dialect ends in the same shape, the one Assay's own instrumentation writes: messages as the
GenAI conventions' JSON (`[{"role": ..., "parts": [{"type": "text", "content": ...}]}]`), usage
and models under the conventions' attribute names."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

Message = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Rename:
    """A foreign attribute read into a GenAI one, through `convert` when the units differ."""

    target: str
    convert: Callable[[Any], Any] | None = None


def apply_renames(
    attrs: Mapping[str, Any], table: Mapping[str, str | Rename], out: dict[str, Any]
) -> set[str]:
    """Fill `out` from `attrs` by `table` (foreign name → GenAI name); the first foreign name
    found for a GenAI name wins. Returns the foreign names read, which leave the attributes map."""
    consumed = set()
    for foreign, target in table.items():
        if foreign not in attrs:
            continue
        rename = target if isinstance(target, Rename) else Rename(target)
        if rename.target == foreign:  # spelled the same: nothing to translate
            continue
        consumed.add(foreign)
        value = attrs[foreign]
        if rename.convert is not None:
            value = rename.convert(value)
        if value is not None and rename.target not in out:
            out[rename.target] = value
    return consumed


def merged(attrs: Mapping[str, Any], consumed: set[str], out: Mapping[str, Any]) -> dict[str, Any]:
    """The translated attributes: the span's own GenAI names win over what was read from foreign
    ones; the foreign names read leave, everything else stays for the attributes map."""
    kept = {k: v for k, v in attrs.items() if k not in consumed}
    return {**kept, **{k: v for k, v in out.items() if k not in attrs}}


@functools.lru_cache(maxsize=64)  # prefixes come from the dialect tables, a handful
def _index_pattern(prefix: str) -> re.Pattern[str]:
    return re.compile(re.escape(prefix) + r"\.(\d+)\.(.+)")


def indexed(attrs: Mapping[str, Any], prefix: str) -> dict[int, dict[str, Any]]:
    """`{prefix}.N.rest` attributes grouped by N: `{N: {rest: value}}`, in N order."""
    dotted = prefix + "."
    pattern = _index_pattern(prefix)
    groups: dict[int, dict[str, Any]] = {}
    for key, value in attrs.items():
        match = pattern.fullmatch(key) if key.startswith(dotted) else None
        if match:
            groups.setdefault(int(match.group(1)), {})[match.group(2)] = value
    return dict(sorted(groups.items()))


def parsed_json(value: Any) -> Any:
    """A JSON text parsed, a structured value as it is, anything else None."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except (ValueError, RecursionError):
            return None
    return value


def text_part(content: Any) -> dict[str, Any]:
    return {"type": "text", "content": content if isinstance(content, str) else str(content)}


def content_parts(content: Any) -> list[dict[str, Any]]:
    """OpenAI-style content (a string, or a list of typed parts) as GenAI parts."""
    if content is None or content == "":
        return []
    if isinstance(content, str):
        return [text_part(content)]
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict) and part.get("type") == "text" and "text" in part:
                parts.append(text_part(part["text"]))
            elif isinstance(part, dict) and "content" in part:
                parts.append(dict(part))
            else:
                parts.append(text_part(part if isinstance(part, str) else json.dumps(part)))
        return parts
    return [text_part(json.dumps(content) if isinstance(content, dict) else content)]


def tool_call_part(call: Mapping[str, Any]) -> dict[str, Any]:
    """An OpenAI-style tool call (`{"id", "function": {"name", "arguments"}}`) as a GenAI part."""
    nested = call.get("function")
    function: Mapping[str, Any] = nested if isinstance(nested, Mapping) else call
    arguments = parsed_json(function.get("arguments"))
    return {
        "type": "tool_call",
        "id": call.get("id"),
        "name": function.get("name"),
        "arguments": arguments if arguments is not None else function.get("arguments"),
    }


def chat_message(
    role: Any,
    content: Any = None,
    *,
    tool_calls: Iterable[Mapping[str, Any]] = (),
    tool_call_id: Any = None,
    finish_reason: Any = None,
) -> Message:
    """One message in the GenAI shape, from the pieces every dialect has in some form."""
    role = str(role or "user")
    if role == "tool":
        parts: list[dict[str, Any]] = [
            {"type": "tool_call_response", "id": tool_call_id, "response": content}
        ]
    else:
        parts = content_parts(content)
        parts.extend(tool_call_part(call) for call in tool_calls if isinstance(call, Mapping))
    message: Message = {"role": role, "parts": parts}
    if finish_reason:
        message["finish_reason"] = str(finish_reason)
    return message


def openai_message(message: Any, finish_reason: Any = None) -> Message | None:
    """An OpenAI chat message (request or response JSON) in the GenAI shape."""
    if not isinstance(message, Mapping):
        return None
    calls = message.get("tool_calls") or ()
    return chat_message(
        message.get("role") or "assistant",
        message.get("content"),
        tool_calls=calls if isinstance(calls, list) else (),
        tool_call_id=message.get("tool_call_id"),
        finish_reason=finish_reason,
    )


def to_json(messages: list[Message]) -> str:
    return json.dumps(messages, ensure_ascii=False)
