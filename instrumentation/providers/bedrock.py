"""Amazon Bedrock runtime instrumentation (boto3/botocore): Converse and InvokeModel, streamed too.

`BedrockInstrumentor` wraps `botocore.client.BaseClient._make_api_call`, the one method
every boto3 client call goes through, so clients created before or after instrumenting
are covered alike. `describe` looks at the operation name first (a set lookup) and lets
every other AWS call pass untouched; `Converse`, `ConverseStream`, `InvokeModel` and
`InvokeModelWithResponseStream` of `bedrock-runtime` each make one CLIENT span. Streams
(`response["stream"]`, `response["body"]`) are wrapped; an InvokeModel body is read once,
parsed (`_bedrock_bodies`, per model family), and handed back to the caller as a fresh
`StreamingBody` holding the same bytes.

A failed call records the AWS error code (`ThrottlingException`, ...) as `error.type`.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from typing import Any

import wrapt

from assay.instrumentation import semconv
from assay.instrumentation._spans import Attributes, LLMCall, report_internal_error
from assay.instrumentation._streams import StreamAccumulator, SyncStreamProxy
from assay.instrumentation.providers import _bedrock_bodies as bodies
from assay.instrumentation.providers import _converse as converse
from assay.instrumentation.providers._call import CallStart, CallWrappers, opening
from assay.instrumentation.providers._instrumentor import ClientInstrumentor, Target

_SERVICE = "bedrock-runtime"
_CONVERSE = "Converse"
_CONVERSE_STREAM = "ConverseStream"
_INVOKE = "InvokeModel"
_INVOKE_STREAM = "InvokeModelWithResponseStream"
_OPERATIONS = frozenset({_CONVERSE, _CONVERSE_STREAM, _INVOKE, _INVOKE_STREAM})
_STREAMS = {_CONVERSE_STREAM: "stream", _INVOKE_STREAM: "body"}  # where the stream is


def aws_error_code(error: BaseException) -> str | None:
    """The AWS error code botocore's `ClientError` carries (`ThrottlingException`, ...)."""
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        code = (response.get("Error") or {}).get("Code")
        if isinstance(code, str) and code:
            return code
    return None


def _request_body(body: Any) -> dict[str, Any] | None:
    """The InvokeModel request body as JSON, when it is bytes or text (a file is never read)."""
    if isinstance(body, (bytes, bytearray, str)):
        try:
            parsed = json.loads(body)
        except ValueError:
            return None
        return parsed if isinstance(parsed, dict) else None
    return None


class _Request:
    """What a Bedrock call's end needs: the operation, the model id, the body family."""

    __slots__ = ("family", "model_id", "operation")

    def __init__(self, operation: str, model_id: str | None, family: str) -> None:
        self.operation = operation
        self.model_id = model_id
        self.family = family


class _EventIterator(wrapt.ObjectProxy):
    """botocore's `EventStream` with `__next__`, as the shared stream proxy expects.

    An `EventStream` is only iterable; this keeps one iterator over it and, when an event
    is an AWS error (`EventStreamError`), tells the accumulator its code before re-raising.
    """

    def __init__(self, stream: Any, accumulator: Any) -> None:
        super().__init__(stream)
        self._self_events = iter(stream)
        self._self_accumulator = accumulator

    def __next__(self) -> Any:
        try:
            return next(self._self_events)
        except StopIteration:
            raise
        except BaseException as error:
            try:
                self._self_accumulator.error_code = aws_error_code(error)
            except Exception:
                report_internal_error("reading a bedrock stream error")
            raise


class _StreamEvents:
    """The events of ConverseStream, or the JSON chunks of InvokeModelWithResponseStream."""

    def __init__(self, request: _Request, capture: bool) -> None:
        self.error_code: str | None = None
        self._model = request.model_id
        self._converse: converse.ConverseEvents | None = None
        self._chunks: bodies.InvokeChunks | None = None
        if request.operation == _CONVERSE_STREAM:
            self._converse = converse.ConverseEvents(capture)
        else:
            self._chunks = bodies.InvokeChunks(request.family, request.model_id, capture)

    def add(self, event: Mapping[str, Any]) -> None:
        if self._converse is not None:
            self._converse.add(event)
            return
        chunk = event.get("chunk")
        if chunk is not None and self._chunks is not None:
            body = json.loads(chunk.get("bytes") or b"{}")
            if isinstance(body, dict):
                self._chunks.add(body)

    def attributes(self, call: LLMCall) -> Attributes:
        if self._converse is not None:
            attributes = self._converse.attributes(call, self._model)
        else:
            assert self._chunks is not None
            attributes = self._chunks.attributes(call)
        if self.error_code:
            attributes[semconv.ERROR_TYPE] = self.error_code
        return attributes


class BedrockWrappers(CallWrappers):
    """Spans for the Bedrock runtime's Converse and InvokeModel operations."""

    library = "bedrock"
    targets = (Target("botocore.client", "BaseClient", ("_make_api_call",), "api_call"),)

    def describe(self, kind: str, instance: Any, args: Any, kwargs: Any) -> CallStart | None:
        operation = args[0] if args else kwargs.get("operation_name")
        if operation not in _OPERATIONS or instance._service_model.service_name != _SERVICE:
            return None
        params = args[1] if len(args) > 1 else kwargs.get("api_params")
        if not isinstance(params, dict):
            return None
        model_id = params.get("modelId")
        model = model_id if isinstance(model_id, str) else None
        stream = operation in _STREAMS
        if operation in (_CONVERSE, _CONVERSE_STREAM):
            family, request = "converse", params
            operation_name = semconv.OP_CHAT
            attributes = opening(operation_name, semconv.PROVIDER_AWS_BEDROCK, model, stream)
            converse.INFERENCE.read(params.get("inferenceConfig"), attributes)
            self.add_content(attributes, lambda: converse.request_content(request))
        else:
            body = _request_body(params.get("body"))
            family = bodies.family_of(model or "", body) if body is not None else "other"
            operation_name = bodies.operation_of(family)
            attributes = opening(operation_name, semconv.PROVIDER_AWS_BEDROCK, model, stream)
            request = body or {}
            bodies.request_attributes(family, request, attributes)
            self.add_content(attributes, lambda: bodies.request_content(family, request))
        details = _Request(operation, model, family)
        return CallStart(
            kind,
            operation_name,
            semconv.PROVIDER_AWS_BEDROCK,
            model,
            attributes,
            stream,
            details,
        )

    def error_attributes(self, error: BaseException) -> Attributes | None:
        code = aws_error_code(error)
        return {semconv.ERROR_TYPE: code} if code else None

    def finish(self, call: LLMCall, start: CallStart, result: Any) -> Any:
        request: _Request = start.details
        if request.operation == _CONVERSE:
            call.end(self.response_attributes(call, start, result))
        elif request.operation == _INVOKE:
            self._finish_invoke(call, request, result)
        else:
            key = _STREAMS[request.operation]
            stream = result.get(key)
            if stream is None:
                call.end()
            else:
                accumulator = self.accumulator(call, start)
                events = _EventIterator(stream, accumulator)
                result[key] = SyncStreamProxy(events, call, accumulator)
        return result

    def accumulator(self, call: LLMCall, start: CallStart) -> StreamAccumulator:
        return _StreamEvents(start.details, self.capture_content)

    def response_attributes(self, call: LLMCall, start: CallStart, response: Any) -> Attributes:
        return converse.response_attributes(call, response, start.model, self.capture_content)

    def _finish_invoke(self, call: LLMCall, request: _Request, result: Any) -> None:
        """Read the response body and hand the caller a fresh body with the same bytes."""
        body = result.get("body")
        if body is None or not hasattr(body, "read"):
            call.end()
            return
        from botocore.response import StreamingBody

        data = body.read()
        result["body"] = StreamingBody(io.BytesIO(data), len(data))
        headers = (result.get("ResponseMetadata") or {}).get("HTTPHeaders")
        family = request.family
        try:
            response = json.loads(data) if data else {}
        except ValueError:
            response = None
        if not isinstance(response, dict):  # the model's own fault: the headers still count
            family, response = "other", {}
        attributes: Attributes = {}
        try:
            attributes = bodies.response_attributes(
                call, family, request.model_id, response, headers, self.capture_content
            )
        except Exception:
            report_internal_error("reading a bedrock invoke response body")
        call.end(attributes)


class BedrockInstrumentor(ClientInstrumentor):
    """Spans for Amazon Bedrock runtime calls made with boto3 / botocore."""

    wrappers = BedrockWrappers
