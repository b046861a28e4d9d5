"""The shared LLM span builder: one CLIENT span per call, per the GenAI conventions.

Providers describe a call with attribute dicts; this module opens the span, stamps the
ambient `context(...)` attributes, prices the usage, records errors and ends the span
exactly once. Nothing here raises into the user's code: an Assay-side failure is
logged once per kind through `report_internal_error` and the call goes on untouched.
"""

from __future__ import annotations

import json
import logging
from json import encoder as json_encoder
from time import perf_counter
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry.instrumentation.utils import (
    _SUPPRESS_INSTRUMENTATION_KEY,
    _SUPPRESS_INSTRUMENTATION_KEY_PLAIN,
)
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer, set_span_in_context
from opentelemetry.util.types import AttributeValue

from assay.instrumentation import pricing, semconv
from assay.instrumentation._context import current_attributes

logger = logging.getLogger("assay.instrumentation")

Attributes = dict[str, AttributeValue]

# Set in the OTel context while a wrapped LLM call runs: a client method that calls
# another instrumented one (e.g. `parse` calling `create` in some openai versions) must
# still make one LLM span, not two.
_IN_LLM_CALL = otel_context.create_key("assay-llm-call")

# Set by a framework span that stands for an LLM call (an agent SDK's model call): each LLM span a
# client instrumentation opens inside it is noted in the list, so the framework leaves the call to
# that span and describes it itself only when no instrumented client made it.
_LLM_CALL_WATCH = otel_context.create_key("assay-llm-call-watch")
# Set by a framework's tool span (an agent SDK's function tool): a client of a tool protocol (MCP)
# calling the same tool inside it adds to that span rather than opening a second tool span.
_TOOL_SPAN = otel_context.create_key("assay-tool-span")

_reported_kinds: set[str] = set()


def report_internal_error(kind: str) -> None:
    """Log the exception being handled as an Assay failure: a warning the first time per kind.

    Call it from an `except` block. Later failures of the same kind go to debug without
    a traceback, so a broken code path costs neither log volume nor formatting time.
    """
    if kind in _reported_kinds:
        logger.debug("Assay instrumentation failed again in %s", kind)
        return
    _reported_kinds.add(kind)
    logger.warning(
        "Assay instrumentation failed in %s; the LLM call itself is unaffected",
        kind,
        exc_info=True,
    )


def should_trace() -> bool:
    """False inside another Assay LLM call or under OTel's `suppress_instrumentation()`."""
    current = otel_context.get_current()  # one lookup for the three keys
    return not (
        current.get(_IN_LLM_CALL)
        or current.get(_SUPPRESS_INSTRUMENTATION_KEY)
        or current.get(_SUPPRESS_INSTRUMENTATION_KEY_PLAIN)
    )


def in_llm_call() -> bool:
    """True while a wrapped client call runs: its Assay LLM span is the current one."""
    return bool(otel_context.get_value(_IN_LLM_CALL))


def watching_llm_calls(parent: otel_context.Context) -> tuple[otel_context.Context, list[bool]]:
    """`parent` with a fresh watch list: it gets an entry for each LLM span opened under it."""
    seen: list[bool] = []
    return otel_context.set_value(_LLM_CALL_WATCH, seen, parent), seen


def with_tool_span(
    parent: otel_context.Context, tool_name: str, span: Span
) -> otel_context.Context:
    """`parent` with `span` as the tool span that a call of `tool_name` inside it belongs to."""
    return otel_context.set_value(_TOOL_SPAN, (tool_name, span), parent)


def enclosing_tool_span(tool_name: str) -> Span | None:
    """The framework's tool span of the call of `tool_name` running now, if there is one."""
    marked = otel_context.get_value(_TOOL_SPAN)
    if isinstance(marked, tuple) and marked[0] == tool_name:
        span: Span = marked[1]
        return span
    return None


def _json_default(value: Any) -> Any:
    # Message objects handed back to the client (pydantic models) and anything else
    # JSON does not know: keep the span, lose only fidelity.
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(exclude_none=True)
    return str(value)


# One encoder, built once: `json.dumps` with options builds a new one per call.
_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=_json_default)
# `JSONEncoder.encode` still builds its C encoder on every call; this one is built once.
# No circular-reference markers: they would be shared state between threads, and a
# cycle (impossible in a JSON request) still fails, with RecursionError.
_c_make_encoder: Any = getattr(json_encoder, "c_make_encoder", None)  # CPython's C accelerator
_C_ENCODE = (
    _c_make_encoder(
        None, _json_default, json_encoder.encode_basestring, None, ":", ",", False, False, True
    )
    if _c_make_encoder is not None
    else None
)


# With every non-ASCII character escaped: a lone surrogate comes out as `\udXXXX`, valid JSON.
_JSON_ASCII = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"), default=_json_default)


def to_json(value: Any) -> str:
    """Compact JSON for span attributes (messages, tool definitions)."""
    if _C_ENCODE is None or type(value) is str:
        text = _JSON.encode(value)
    else:
        text = "".join(_C_ENCODE(value, 0))
    if text.isascii():  # nearly always, and a scan far cheaper than the encoding
        return text
    # A provider's JSON may escape half of a surrogate pair (a reply cut mid-emoji), and json.loads
    # keeps it: a str that UTF-8 cannot encode, so the OTLP exporter would drop the attribute.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _JSON_ASCII.encode(value)
    return text


def error_type(error: BaseException) -> str:
    """The `error.type` of an exception: its class's qualified name."""
    return type(error).__qualname__


class LLMCall:
    """One LLM call in flight: its span, what pricing needs, and whether it has ended."""

    __slots__ = (
        "_answer_error",
        "_ended",
        "_usage_stated",
        "provider",
        "span",
        "started",
        "time_to_first_chunk",
    )

    def __init__(
        self,
        tracer: Tracer,
        operation: str,
        provider: str,
        request_model: str | None,
        attributes: Attributes,
        *,
        context: otel_context.Context | None = None,
        start_time: int | None = None,
    ) -> None:
        ambient = current_attributes()
        if ambient:
            attributes.update(ambient)
        watch = otel_context.get_value(_LLM_CALL_WATCH, context)
        if watch is not None:
            watch.append(True)  # type: ignore[attr-defined]
        # Attributes passed at start (not set one by one) cost one lock and reach samplers.
        self.span: Span = tracer.start_span(
            f"{operation} {request_model}" if request_model else operation,
            context=context,
            kind=SpanKind.CLIENT,
            attributes=attributes,
            start_time=start_time,
        )
        self.provider = provider
        self.started = perf_counter()
        self.time_to_first_chunk: float | None = None
        self._ended = False
        self._usage_stated = False  # add_usage ran: the span says where its tokens came from
        self._answer_error: tuple[str, str] | None = None  # see `answered_with_error`

    @property
    def ended(self) -> bool:
        return self._ended

    def attach(self) -> object:
        """Make the span current, so HTTP client spans nest under it; returns the detach token."""
        return otel_context.attach(
            otel_context.set_value(_IN_LLM_CALL, True, set_span_in_context(self.span))
        )

    @staticmethod
    def detach(token: object) -> None:
        otel_context.detach(token)  # type: ignore[arg-type]

    def mark_first_chunk(self) -> None:
        if self.time_to_first_chunk is None:
            self.time_to_first_chunk = perf_counter() - self.started

    def answered_with_error(self, kind: str, message: str) -> None:
        """The API answered, without an exception the client would raise, that the call failed
        (a Response with `status: failed`, a stream's `error` event): the span ends as an error
        of `kind` (the API's error code) with `message`, like a call that raised."""
        self._answer_error = (kind, message)

    def add_usage(
        self,
        attributes: Attributes,
        model: str | None,
        input_tokens: int | None,
        output_tokens: int | None,
        cached_input_tokens: int | None = None,
        cache_creation_input_tokens: int | None = None,
        reasoning_output_tokens: int | None = None,
        *,
        audio_input_tokens: int | None = None,
        audio_output_tokens: int | None = None,
        image_input_tokens: int | None = None,
        image_output_tokens: int | None = None,
        source: str = semconv.USAGE_SOURCE_REPORTED,
    ) -> None:
        """Put token counts, cost and where they came from (`source`, `USAGE_SOURCE`) into
        `attributes`; input and output both None means no usage could be had.

        No usage is stated as `USAGE_SOURCE = none` (and `USAGE_REPORTED = False`), never as
        zero tokens: a silent zero is indistinguishable from a free call. Counts follow the
        GenAI convention: the audio and image parts are included in their totals.
        """
        self._usage_stated = True
        if input_tokens is None and output_tokens is None:
            attributes[semconv.USAGE_REPORTED] = False
            attributes[semconv.USAGE_SOURCE] = semconv.USAGE_SOURCE_NONE
            return
        attributes[semconv.USAGE_REPORTED] = source == semconv.USAGE_SOURCE_REPORTED
        attributes[semconv.USAGE_SOURCE] = source
        for name, count in (
            (semconv.USAGE_INPUT_TOKENS, input_tokens),
            (semconv.USAGE_OUTPUT_TOKENS, output_tokens),
            (semconv.USAGE_CACHE_READ_INPUT_TOKENS, cached_input_tokens),
            (semconv.USAGE_CACHE_CREATION_INPUT_TOKENS, cache_creation_input_tokens),
            (semconv.USAGE_REASONING_OUTPUT_TOKENS, reasoning_output_tokens),
            (semconv.USAGE_AUDIO_INPUT_TOKENS, audio_input_tokens),
            (semconv.USAGE_AUDIO_OUTPUT_TOKENS, audio_output_tokens),
            (semconv.USAGE_IMAGE_INPUT_TOKENS, image_input_tokens),
            (semconv.USAGE_IMAGE_OUTPUT_TOKENS, image_output_tokens),
        ):
            if count is not None:
                attributes[name] = count
        try:
            cost = pricing.cost_usd(
                model,
                input_tokens,
                output_tokens,
                cached_input_tokens=cached_input_tokens,
                cache_creation_input_tokens=cache_creation_input_tokens,
                provider=self.provider,
                reasoning_tokens=reasoning_output_tokens,
                audio_input_tokens=audio_input_tokens,
                audio_output_tokens=audio_output_tokens,
            )
        except Exception:
            report_internal_error("pricing")
            return
        if cost is not None:  # unknown price stays absent (NULL), never 0
            attributes[semconv.COST_USD] = cost

    def end(
        self,
        attributes: Attributes | None = None,
        error: BaseException | None = None,
        *,
        end_time: int | None = None,
    ) -> None:
        """Record the outcome and end the span; later calls do nothing."""
        if self._ended:
            return
        self._ended = True
        span = self.span
        try:
            if attributes is None:
                attributes = {}
            if self.time_to_first_chunk is not None:
                attributes[semconv.RESPONSE_TIME_TO_FIRST_CHUNK] = self.time_to_first_chunk
            if not self._usage_stated:  # a failed call, a body the application reads itself
                attributes[semconv.USAGE_SOURCE] = semconv.USAGE_SOURCE_NONE
            failed = error is not None or self._answer_error is not None
            if failed and not attributes.get(semconv.RESPONSE_FINISH_REASONS):
                # A call that failed before its answer finished is unpriced (its tokens stay):
                # what a provider bills for one (Anthropic's stream `error` event after
                # `message_start`, which carried the input usage) is documented nowhere. One
                # that failed after (openai's parse() raising on an answer cut at max_tokens)
                # was billed whole. The collector's rule too (normalize/cost.py: call_cost).
                attributes.pop(semconv.COST_USD, None)
            if attributes:
                span.set_attributes(attributes)
            if error is not None:
                # A provider may name the error better than its class (an AWS error code).
                if not (attributes and semconv.ERROR_TYPE in attributes):
                    span.set_attribute(semconv.ERROR_TYPE, error_type(error))
                span.set_status(Status(StatusCode.ERROR, str(error)))
                span.record_exception(error)
            elif self._answer_error is not None:
                kind, message = self._answer_error
                span.set_attribute(semconv.ERROR_TYPE, kind)
                span.set_status(Status(StatusCode.ERROR, message))
        except Exception:
            report_internal_error("recording the call outcome")
        try:
            span.end(end_time=end_time)
        except Exception:
            report_internal_error("ending the span")


def start_call(
    tracer: Tracer,
    operation: str,
    provider: str,
    request_model: str | None,
    attributes: Attributes,
    *,
    context: otel_context.Context | None = None,
    start_time: int | None = None,
) -> LLMCall | None:
    """Open the span of one call, or None (logged) if that fails: then the call runs bare.
    `context` and `start_time` describe a call that has already happened (a framework's record)."""
    try:
        return LLMCall(
            tracer,
            operation,
            provider,
            request_model,
            attributes,
            context=context,
            start_time=start_time,
        )
    except Exception:
        report_internal_error("starting the span")
        return None
