"""MCP client tool calls (`mcp` package, `ClientSession.call_tool`): one `execute_tool` span each.

The span carries the tool's name, its arguments and result (content: off with
`ASSAY_CAPTURE_CONTENT=false`), and an error status when the call raised or the server answered
with an error result (`isError`). A call made inside an agent framework's span for the same tool
(the OpenAI Agents SDK runs an MCP server's tools as function tools) adds the MCP details to that
span instead: one tool call, one tool span.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from assay.instrumentation import semconv
from assay.instrumentation._spans import (
    Attributes,
    enclosing_tool_span,
    error_type,
    report_internal_error,
    should_trace,
    to_json,
)
from assay.instrumentation.providers._call import CallWrappers
from assay.instrumentation.providers._instrumentor import ClientInstrumentor, Target

# What an error result of a tool is called when the server sends no more than its text.
TOOL_ERROR = "tool_error"


def _arguments(args: Any, kwargs: Any) -> tuple[str, Any]:
    name = kwargs.get("name", args[0] if args else "")
    arguments = kwargs.get("arguments", args[1] if len(args) > 1 else None)
    return str(name), arguments


def _is_error(result: Any) -> bool:
    # `is_error` in mcp 2, `isError` in 1.x
    return bool(getattr(result, "is_error", None) or getattr(result, "isError", None))


def result_text(result: Any) -> str:
    """The result as a person reads it: its structured content as JSON, else its text blocks
    joined, else every content block as JSON."""
    structured = getattr(result, "structured_content", None)
    if structured is None:
        structured = getattr(result, "structuredContent", None)
    if structured is not None:
        return to_json(structured)
    blocks = list(getattr(result, "content", None) or ())
    texts = [getattr(block, "text", None) for block in blocks]
    if all(isinstance(text, str) for text in texts):
        return "\n".join(texts)  # type: ignore[arg-type]
    return to_json(blocks)


class MCPToolCallWrappers(CallWrappers):
    """Wraps `ClientSession.call_tool` in an `execute_tool` span (a tool call, not an LLM call:
    only the wrapper is its own)."""

    library = "mcp"
    targets = (
        Target("mcp.client.session", "ClientSession", ("call_tool",), "call_tool", is_async=True),
    )

    def wrapper(self, kind: str, is_async: bool) -> Any:
        async def call_tool(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
            if not (self.enabled and should_trace()):
                return await wrapped(*args, **kwargs)
            span, token, own = self._begin(args, kwargs)
            try:
                result = await wrapped(*args, **kwargs)
            except BaseException as error:
                self._end(span, token, own, None, error)
                raise
            self._end(span, token, own, result, None)
            return result

        return call_tool

    def _begin(self, args: Any, kwargs: Any) -> tuple[Span | None, object | None, bool]:
        """The span of the call (a framework's own tool span, or a new one made current), its
        detach token, and whether the span is ours to end."""
        try:
            name, arguments = _arguments(args, kwargs)
            outer = enclosing_tool_span(name)
            attributes: Attributes = {semconv.MCP_METHOD_NAME: semconv.MCP_METHOD_TOOLS_CALL}
            if outer is not None:
                outer.set_attributes(attributes)
                return outer, None, False
            attributes.update(
                {
                    semconv.OPERATION_NAME: semconv.OP_EXECUTE_TOOL,
                    semconv.TOOL_NAME: name,
                    semconv.TOOL_TYPE: semconv.TOOL_TYPE_EXTENSION,
                }
            )
            if self.capture_content and arguments is not None:
                attributes[semconv.TOOL_CALL_ARGUMENTS] = to_json(arguments)
            span = self.tracer.start_span(
                f"{semconv.OP_EXECUTE_TOOL} {name}", kind=SpanKind.CLIENT, attributes=attributes
            )
            token = otel_context.attach(trace.set_span_in_context(span))
            return span, token, True
        except Exception:
            report_internal_error("starting an mcp tool span")
            return None, None, False

    def _end(
        self,
        span: Span | None,
        token: object | None,
        own: bool,
        result: Any,
        error: BaseException | None,
    ) -> None:
        if span is None or not own:
            return
        try:
            otel_context.detach(token)  # type: ignore[arg-type]
            if result is not None and self.capture_content:
                span.set_attribute(semconv.TOOL_CALL_RESULT, result_text(result))
            if error is not None:
                span.set_attribute(semconv.ERROR_TYPE, error_type(error))
                span.set_status(Status(StatusCode.ERROR, str(error)))
                span.record_exception(error)
            elif _is_error(result):
                span.set_attribute(semconv.ERROR_TYPE, TOOL_ERROR)
                span.set_status(Status(StatusCode.ERROR, result_text(result)[:500]))
        except Exception:
            report_internal_error("ending an mcp tool span")
        try:
            span.end()
        except Exception:
            report_internal_error("ending an mcp tool span")


class MCPClientInstrumentor(ClientInstrumentor):
    wrappers = MCPToolCallWrappers
