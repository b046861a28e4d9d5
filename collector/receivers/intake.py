"""What both receivers do with a decoded request: check it against what the store can hold,
redact its content, spool what remains, and answer with the OTLP export response."""

from __future__ import annotations

from google.protobuf.message import Message

from assay.collector.normalize.otlp import count_items
from assay.collector.pipeline import Pipeline
from assay.collector.receivers.content import redact_request
from assay.collector.receivers.validation import check_request, export_response
from assay.collector.stage_timing import stage


async def take(
    pipeline: Pipeline, signal: str, request: Message, body: bytes | None, mended: int = 0
) -> Message:
    """Spool `request` once checked and redacted; return the response (with partial success
    when records were rejected or values clamped). `body` is the request's encoding as it came,
    None when it came as JSON; `mended`: how many of its strings were not UTF-8 and were mended
    in decoding (the request is then encoded again). Raises Overloaded when the spool cannot
    take it."""
    with stage("validate"):
        admission = check_request(request, pipeline.oldest_kept(signal))
    if mended:
        admission.clamp("string not valid UTF-8: its invalid bytes replaced with U+FFFD", mended)
    changed = admission.changed  # mended strings included
    if pipeline.redactor is not None:
        with stage("redact"):
            changed |= redact_request(request, pipeline.redactor)
    items = count_items(request)
    if items or not admission.rejected:  # nothing to spool when every record was refused
        if changed or body is None:
            with stage("encode again (redacted)"):
                body = request.SerializeToString()
        with stage("spool append + fsync"):
            await pipeline.submit(signal, body, items)
    if admission.changed:
        pipeline.stats.add(items_rejected=admission.rejected, values_clamped=admission.clamped)
    return export_response(signal, admission)
