"""GenAI message parts and messages: the JSON shapes every provider's spans carry.

Parts follow the GenAI conventions' message schema (`text`, `reasoning`, `tool_call`,
`tool_call_response`, `uri`, `blob`, `file`, ...). Readers of one wire format build
them here so that every provider spells a part the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

Part = dict[str, Any]


_NOT_PYDANTIC: Any = object()


def field(obj: Any, name: str) -> Any:
    """`obj[name]` of a request dict (TypedDict), or `obj.name` of a response model."""
    if isinstance(obj, dict):
        return obj.get(name)
    # A pydantic model (every client's response types) answers a name it lacks through its
    # `__getattr__`, raising AttributeError: about 15 µs each, and the readers ask for many
    # names a provider's answer leaves out. Its fields and extras are looked up directly.
    values = getattr(obj, "__dict__", None)
    if values is not None and name in values:
        return values[name]
    extra = getattr(obj, "__pydantic_extra__", _NOT_PYDANTIC)
    if extra is not _NOT_PYDANTIC and not _on_class(type(obj), name):
        return extra.get(name) if extra else None  # not a property, method or class attribute
    return getattr(obj, name, None)


_class_names: dict[tuple[type, str], bool] = {}  # bounded: the readers' names × model classes


def _on_class(cls: type, name: str) -> bool:
    """Whether `name` is defined on the class (`hasattr` on a pydantic model class raises
    and catches inside its metaclass: slow too)."""
    key = (cls, name)
    found = _class_names.get(key)
    if found is None:
        found = _class_names[key] = any(name in vars(base) for base in cls.__mro__)
    return found


_NO_FIELDS: Mapping[str, Any] = MappingProxyType({})
_plain_names: dict[tuple[type, tuple[str, ...]], bool] = {}  # bounded like `_class_names`


def fields(obj: Any, names: tuple[str, ...]) -> Mapping[str, Any]:
    """`field(obj, name)` for each of `names`, as one mapping to `get` them from.

    A reader of several fields of one object (usage and its details) pays `field`'s checks
    once: a dict is its own mapping, and a pydantic model's fields and extras are read from
    its `__dict__` and `__pydantic_extra__` unless one of `names` is defined on its class.
    """
    if obj is None:
        return _NO_FIELDS
    if isinstance(obj, dict):
        return obj
    values = getattr(obj, "__dict__", None)
    extra = getattr(obj, "__pydantic_extra__", _NOT_PYDANTIC)
    if values is None or extra is _NOT_PYDANTIC or not _plain(type(obj), names):
        return {name: field(obj, name) for name in names}
    return {**extra, **values} if extra else values


def _plain(cls: type, names: tuple[str, ...]) -> bool:
    """Whether none of `names` is a property, method or class attribute of `cls`."""
    key = (cls, names)
    plain = _plain_names.get(key)
    if plain is None:
        plain = _plain_names[key] = not any(_on_class(cls, name) for name in names)
    return plain


def int_or_none(value: Any) -> int | None:
    """A count as the API gave it, or None for anything that is not an int."""
    return value if type(value) is int else None


def text_part(text: Any) -> Part:
    return {"type": "text", "content": text}


def reasoning_part(text: Any) -> Part:
    return {"type": "reasoning", "content": text}


def tool_call_part(call_id: Any, name: Any, arguments: Any) -> Part:
    return {"type": "tool_call", "id": call_id, "name": name, "arguments": arguments}


def tool_response_part(call_id: Any, response: Any) -> Part:
    return {"type": "tool_call_response", "id": call_id, "response": response}


def blob_part(modality: str | None, mime_type: Any) -> Part:
    """Inline media: its kind and type, never its bytes (they can be megabytes)."""
    part: Part = {"type": "blob"}
    if modality:
        part["modality"] = modality
    if mime_type:
        part["mime_type"] = mime_type
    return part


def image_url_part(url: Any) -> Part:
    """An image given by URL; a `data:` URL keeps its type, not its bytes."""
    if isinstance(url, str) and url.startswith("data:"):
        return blob_part("image", url[5:].split(";", 1)[0])
    return {"type": "uri", "modality": "image", "uri": url}


_MERGEABLE = frozenset({"text", "reasoning"})


def append_part(parts: list[Part], part: Part) -> None:
    """Add a streamed part: text after text (or reasoning after reasoning) extends it."""
    last = parts[-1] if parts else None
    if last is not None and last["type"] == part["type"] and part["type"] in _MERGEABLE:
        last["content"] = (last["content"] or "") + (part["content"] or "")
    else:
        parts.append(part)


def output_message(parts: list[Part], finish_reason: Any, role: Any = "assistant") -> Part:
    """The model's answer as one GenAI output message."""
    message: Part = {"role": role or "assistant", "parts": parts}
    if finish_reason:
        message["finish_reason"] = finish_reason
    return message


def plain_text(content: Any) -> Any:
    """A tool result's content as text: the text parts of a list joined, anything else as is."""
    if isinstance(content, (list, tuple)):
        return "".join(str(field(part, "text") or "") for part in content)
    return content


def converted_messages(messages: Any, convert: Callable[[Any], Part]) -> list[Part] | None:
    """A request's `messages`, each one converted; None when they are not a list or tuple.

    Anything else is left unread: iterating a generator would consume the user's request.
    """
    if not isinstance(messages, (list, tuple)):
        return None
    return [convert(message) for message in messages]


def function_tool_definitions(tools: Any) -> list[Part] | None:
    """Tool definitions in the chat-completions shape (`{"type": "function", "function": ...}`).

    A tool of another kind (a custom or built-in tool) is kept as given.
    """
    if not isinstance(tools, (list, tuple)):
        return None
    definitions = []
    for tool in tools:
        function = field(tool, "function")
        if function is None:
            definitions.append(tool)
            continue
        definition: Part = {"type": "function", "name": field(function, "name")}
        description = field(function, "description")
        if isinstance(description, str) and description:
            definition["description"] = description
        parameters = field(function, "parameters")
        if parameters is not None:
            dump = getattr(parameters, "model_dump", None)  # a client's own schema model
            definition["parameters"] = dump(exclude_none=True) if callable(dump) else parameters
        definitions.append(definition)
    return definitions
