"""OTLP protobuf whose strings are not all UTF-8, read anyway: each invalid byte becomes U+FFFD.

protobuf refuses a whole message when one string field holds bytes that are not UTF-8 ("Wire
format was corrupt"), where the OpenTelemetry Collector takes it: an SDK in C++ or Go can send
any bytes as a string (a binary id, a truncated multi-byte character). Refused, the client drops
the whole batch. So a request that fails to parse is parsed again as a twin of its type in which
every string field is a bytes field (the two are the same on the wire); its strings are mended,
and the mended request is parsed as its own type. A request that fails as the twin too is
malformed for another reason, and refused as before."""

from __future__ import annotations

import functools

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor, FileDescriptor
from google.protobuf.message import DecodeError, Message

_STRING, _BYTES = FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_BYTES


def _files_in_order(file: FileDescriptor, seen: dict[str, FileDescriptor]) -> None:
    for dependency in file.dependencies:
        _files_in_order(dependency, seen)
    seen.setdefault(file.name, file)


@functools.cache
def _twin(descriptor: Descriptor) -> tuple[type[Message], frozenset[tuple[str, str]]]:
    """The twin of a message type (strings as bytes, in a pool of its own), and the fields of
    every message type that are strings in the original: (message's full name, field name)."""
    files: dict[str, FileDescriptor] = {}
    _files_in_order(descriptor.file, files)
    pool = descriptor_pool.DescriptorPool()
    strings: set[tuple[str, str]] = set()
    for file in files.values():
        proto = descriptor_pb2.FileDescriptorProto()
        file.CopyToProto(proto)
        stack = [(f"{proto.package}.{m.name}", m) for m in proto.message_type]
        while stack:
            name, message = stack.pop()
            stack += [(f"{name}.{nested.name}", nested) for nested in message.nested_type]
            for field in message.field:
                if field.type == _STRING:
                    field.type = _BYTES
                    strings.add((name, field.name))
        pool.Add(proto)
    twin = message_factory.GetMessageClass(pool.FindMessageTypeByName(descriptor.full_name))
    return twin, frozenset(strings)


def _mend(message: Message, strings: frozenset[tuple[str, str]]) -> int:
    """Replace the invalid UTF-8 in the twin's string fields, in place; how many were mended."""
    mended = 0
    for field, value in message.ListFields():
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            for item in (value,) if isinstance(value, Message) else value:
                mended += _mend(item, strings)
        elif (message.DESCRIPTOR.full_name, field.name) in strings:
            single = isinstance(value, bytes)
            values = [value] if single else list(value)
            fixed = [v.decode("utf-8", "replace").encode() for v in values]
            changed = sum(a != b for a, b in zip(values, fixed, strict=True))
            if not changed:
                continue
            mended += changed
            if single:
                setattr(message, field.name, fixed[0])
            else:
                del value[:]
                value.extend(fixed)
    return mended


def parse_mending_utf8(message_type: type[Message], body: bytes) -> tuple[Message, int]:
    """`body` as `message_type` with the invalid UTF-8 of its strings replaced, and how many
    strings were; raises DecodeError when it is malformed otherwise."""
    twin_type, strings = _twin(message_type.DESCRIPTOR)
    twin = twin_type()
    twin.ParseFromString(body)  # DecodeError: not a string's fault
    mended = _mend(twin, strings)
    if not mended:
        raise DecodeError("malformed, though every string is UTF-8")
    request = message_type()
    request.ParseFromString(twin.SerializeToString())
    return request, mended
