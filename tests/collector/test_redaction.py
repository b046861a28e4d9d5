"""Redaction: what each pattern masks and what it leaves alone, where in a request it applies
(in the receiver, before the spool), and, through a running collector, that neither the spool
nor the stored rows ever hold what was masked."""

from __future__ import annotations

import json
import stat
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from assay.collector.normalize.logs import normalize_logs
from assay.collector.normalize.traces import normalize_traces
from assay.collector.receivers.content import is_content_key, redact_request
from assay.collector.redaction import Redactor, luhn_valid
from assay.collector.settings import CollectorSettings
from assay.instrumentation import semconv as sc
from tests.collector.otlp_builders import key_values, make_request, make_span
from tests.conftest import RunningCollector, start_collector

EMAIL = "jane.doe+billing@example.co.uk"
CARD = "4111 1111 1111 1111"  # the Visa test number: Luhn-valid


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        ("email", f"write to {EMAIL}, thanks", "write to [REDACTED:email], thanks"),
        ("email", "a@b.co and x.y@sub.example.org", "[REDACTED:email] and [REDACTED:email]"),
        ("card", f"card {CARD} exp 12/29", "card [REDACTED:card] exp 12/29"),
        ("card", "4111-1111-1111-1111", "[REDACTED:card]"),
        ("card", "amex 378282246310005.", "amex [REDACTED:card]."),
        ("card", "4111111111111111 2", "[REDACTED:card] 2"),
        ("phone", "call (555) 123-4567 now", "call [REDACTED:phone] now"),
        ("phone", "ring +44 20 7946 0958", "ring [REDACTED:phone]"),
        ("phone", "+4915123456789", "[REDACTED:phone]"),
        ("phone", "555.123.4567", "[REDACTED:phone]"),
        ("api_key", "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8t", "[REDACTED:api_key]"),
        ("api_key", "key sk-ant-api03-Zx81kLm29QpRt57WvYb34Nc", "key [REDACTED:api_key]"),
        ("api_key", "AKIAIOSFODNN7EXAMPLE", "[REDACTED:api_key]"),
        ("api_key", "ghp_" + "a1" * 18, "[REDACTED:api_key]"),
        ("api_key", "xoxb-1234567890-abcdefghij", "[REDACTED:api_key]"),
        (
            "api_key",
            "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig",
            "Authorization: Bearer [REDACTED:api_key]",
        ),
        (
            "api_key",
            "api_key=0123456789abcdef0123456789abcdef&x=1",
            "api_key=[REDACTED:api_key]&x=1",
        ),
        (
            "api_key",
            "my secret is Zx81kLm29QpRt57WvYb34NcDe6FgHj0K",
            "my secret is [REDACTED:api_key]",
        ),
        ("api_key", "apiKey: 'Zx81kLm29QpRt57WvYb34NcDe6FgHj0K'", "apiKey: '[REDACTED:api_key]'"),
    ],
)
def test_known_positives(pattern: str, text: str, expected: str) -> None:
    assert Redactor([pattern]).redact(text) == expected


@pytest.mark.parametrize(
    ("pattern", "text"),
    [
        ("email", "@mention and user@localhost and foo@bar"),
        ("card", "4111 1111 1111 1112"),  # 16 digits, Luhn-invalid
        ("card", "1700000000000000000"),  # a nanosecond timestamp
        ("card", "score 0.4111111111111111"),  # digits after a decimal point
        ("card", "order 9111111111111111"),  # no card starts with 9
        ("phone", "order 1234567890"),  # a bare run of digits: an id, not a phone number
        ("phone", "order ORD-555-123-4567"),
        ("phone", "from 192.168.100.200 on 2024-01-15 10:30:00"),
        ("phone", "trace 550e8400-e29b-41d4-a716-446655440000"),
        ("api_key", "task-force-alpha-bravo-charlie-delta"),
        ("api_key", "tokens: this_is_a_very_long_identifier_without_digits"),
        ("api_key", "tokenizer_configuration_for_the_model_2024_version_abc"),
        ("api_key", "the key is short: abc123"),
        ("api_key", "monkey: 0123456789abcdef0123456789abcdef"),
    ],
)
def test_known_negatives(pattern: str, text: str) -> None:
    assert Redactor([pattern]).redact(text) == text


def test_luhn() -> None:
    assert luhn_valid("4111111111111111") and luhn_valid("378282246310005")
    assert not luhn_valid("4111111111111112")


def test_custom_patterns_with_their_own_flags() -> None:
    redactor = Redactor([], [r"ORD-\d{6}", r"(?i)project \w+"])
    assert (
        redactor.redact("ORD-123456 for Project Falcon")
        == "[REDACTED:custom] for [REDACTED:custom]"
    )
    assert redactor.redact("ORD-12345") == "ORD-12345"


def test_json_stays_json_and_keys_name_secrets() -> None:
    messages = [
        {
            "role": "user",
            "parts": [{"type": "text", "content": f"hi\n{EMAIL}\n邮箱{EMAIL} café {CARD}"}],
        },
        {"role": "tool", "api_key": "Zx81kLm29QpRt57WvYb34NcDe6FgHj0K", "tokens": 1234},
    ]
    redacted = Redactor(["email", "card", "api_key"]).redact(json.dumps(messages))
    document = json.loads(redacted)
    assert document[0]["parts"][0]["content"] == (
        "hi\n[REDACTED:email]\n邮箱[REDACTED:email] café [REDACTED:card]"
    )
    assert document[1] == {"role": "tool", "api_key": "[REDACTED:api_key]", "tokens": 1234}
    clean = json.dumps([{"role": "user", "content": "nothing to hide here"}])
    assert Redactor(["email", "card"]).redact(clean) is clean


def test_secrets_in_json_documents_past_the_quick_checks() -> None:
    # The quick checks on a document's raw text: a Slack token in a document with no other
    # dash, a secret after a key word whose digits are the only ones in the document.
    redactor = Redactor(["api_key"])
    slack = json.dumps({"note": "xoxb-1234567890-abcdefghij"})
    assert json.loads(redactor.redact(slack)) == {"note": "[REDACTED:api_key]"}
    secret = json.dumps([{"text": "the token: Zx81kLmQpRtWvYbNcDeFgHjKaBcDeFgHi9"}])
    assert json.loads(redactor.redact(secret)) == [{"text": "the token: [REDACTED:api_key]"}]
    digitless = json.dumps([{"text": "the token: ZxkLmQpRtWvYbNcDeFgHjKaBcDeFgHiJkLm"}])
    assert redactor.redact(digitless) is digitless


def test_custom_patterns_never_break_json() -> None:
    redactor = Redactor([], [r'[a-z]+"'])  # would eat a closing quote in raw JSON
    document = json.dumps({"content": "secret"})
    assert json.loads(redactor.redact(document)) == {"content": "secret"}


def test_numbers_keys_nested_documents_and_escapes_inside_json() -> None:
    redactor = Redactor(["email", "card"])
    arguments = json.dumps({"card": 4111111111111111, "note": f"for {EMAIL}"})
    messages = [
        {
            "role": "assistant",
            "parts": [
                # a card number sent as a JSON number, tool arguments as a JSON string in JSON
                {"type": "tool_call", "arguments": {"card": 4111111111111111, "cvv": 123}},
                {"type": "tool_call", "arguments": arguments},
                {"type": "text", "content": 4111111111111111.0},
            ],
        },
        {"role": "user", "contacts": {EMAIL: "primary", "x.y@example.org": "secondary"}},
    ]
    document = json.loads(redactor.redact(json.dumps(messages)))
    parts = document[0]["parts"]
    assert parts[0]["arguments"] == {"card": "[REDACTED:card]", "cvv": 123}
    assert json.loads(parts[1]["arguments"]) == {
        "card": "[REDACTED:card]",
        "note": "for [REDACTED:email]",
    }
    assert parts[2]["content"] == "[REDACTED:card]"
    # Two keys masked alike keep both values.
    assert document[1]["contacts"] == {
        "[REDACTED:email]": "primary",
        "[REDACTED:email]#2": "secondary",
    }
    # Escaped characters are read as what they stand for, in JSON and in plain text.
    escaped = '[{"content": "mail jane\\u0040example.com"}]'
    assert json.loads(redactor.redact(escaped)) == [{"content": "mail [REDACTED:email]"}]
    assert redactor.redact("plain jane\\u0040example.com") == "plain [REDACTED:email]"
    assert redactor.redact("keep \\u0022quoted\\u0022") == "keep \\u0022quoted\\u0022"


def _attribute_values(request: object) -> dict[str, object]:
    from assay.collector.normalize.otlp import attributes

    (span,) = request.resource_spans[0].scope_spans[0].spans  # type: ignore[attr-defined]
    return attributes(span.attributes)


@pytest.mark.parametrize(
    "attrs",
    [
        # OpenInference, on a chain span (no LLM call): content keys are redacted on any span
        {"openinference.span.kind": "CHAIN", "llm.prompt_template.variables": {"who": EMAIL}},
        {"openinference.span.kind": "CHAIN", "llm.prompts": [f"to {EMAIL}"]},
        {"openinference.span.kind": "RETRIEVER", "retrieval.documents.0.document.content": EMAIL},
        {"openinference.span.kind": "EMBEDDING", "embedding.embeddings.0.embedding.text": EMAIL},
        {"openinference.span.kind": "CHAIN", "metadata": json.dumps({"customer": EMAIL})},
        # OpenLIT's older span attributes, the conventions' tool definitions and tool calls
        {"gen_ai.content.prompt": f"hi {EMAIL}", "gen_ai.content.completion": EMAIL},
        {sc.TOOL_DEFINITIONS: json.dumps([{"name": "mail", "description": f"cc {EMAIL}"}])},
        {sc.TOOL_CALL_ARGUMENTS: json.dumps({"card": 4111111111111111})},
        # An LLM call: any attribute but the identifying ones, whatever its name
        {sc.OPERATION_NAME: "chat", "vendor.request.body": f"from {EMAIL}"},
        {sc.OPERATION_NAME: "chat", "vendor.card": 4111111111111111},
    ],
)
def test_every_kind_of_content_is_redacted_in_the_request(attrs: dict[str, object]) -> None:
    request = make_request("svc", make_span(attrs=attrs))
    assert redact_request(request, Redactor(["email", "card"]))
    stored = json.dumps(_attribute_values(request))
    assert EMAIL not in stored and "4111111111111111" not in stored, stored
    assert "[REDACTED:" in stored


def test_every_value_of_a_repeated_attribute_key_is_redacted() -> None:
    span = make_span(attrs={sc.OPERATION_NAME: "chat", "vendor.note": f"to {EMAIL}"})
    span.attributes.extend(key_values({"vendor.note": f"cc {EMAIL}"}))
    request = make_request("svc", span)
    assert redact_request(request, Redactor(["email"]))
    (stored,) = request.resource_spans[0].scope_spans[0].spans
    notes = [p.value.string_value for p in stored.attributes if p.key == "vendor.note"]
    assert notes == ["to [REDACTED:email]", "cc [REDACTED:email]"]


def test_identifying_attributes_of_a_call_and_other_spans_are_left_alone() -> None:
    attrs = {
        sc.OPERATION_NAME: "chat",
        sc.REQUEST_MODEL: "gpt-4o",
        sc.USER_ID: EMAIL,
        sc.SESSION_ID: EMAIL,
        "llm.model_name": "gpt-4o",
    }
    # (A URL is no longer such an attribute: it may hold a key, so it is redacted on every
    # span; tests/collector/test_redaction_credentials.py.)
    request = make_request("svc", make_span(attrs=attrs), make_span(attrs={"http.route": EMAIL}))
    assert not redact_request(request, Redactor(["email"]))
    request = make_request("svc", make_span(attrs={"http.url": EMAIL}))
    assert redact_request(request, Redactor(["email"]))


def test_content_keys() -> None:
    for key in (
        sc.INPUT_MESSAGES,
        sc.OUTPUT_MESSAGES,
        sc.SYSTEM_INSTRUCTIONS,
        sc.TOOL_DEFINITIONS,
        "gen_ai.prompt",
        "gen_ai.prompt.0.content",
        "gen_ai.completion.1.content",
        "gen_ai.content.prompt",
        "input.value",
        "output.value",
        "llm.input_messages.0.message.content",
        "llm.prompt_template.variables",
        "llm.prompts",
        "retrieval.documents.0.document.content",
        "embedding.embeddings.0.embedding.text",
        "metadata",
    ):
        assert is_content_key(key), key
    for key in (sc.PROMPT_NAME, sc.REQUEST_MODEL, "user.id", "http.url", "llm.model_name"):
        assert not is_content_key(key), key


def test_off_unless_configured() -> None:
    assert Redactor.from_config(CollectorSettings().redaction) is None
    redactor = Redactor.from_config(CollectorSettings(redact=["email"]).redaction)
    assert redactor is not None and redactor.names == ("email",)


def test_settings_name_the_mistake(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSAY_REDACT", "email, card")
    monkeypatch.setenv("ASSAY_REDACT_PATTERNS", r'["ORD-\\d+", "x,y"]')
    settings = CollectorSettings()
    assert settings.redact == ["email", "card"]
    assert settings.redact_patterns == [r"ORD-\d+", "x,y"]
    with pytest.raises(ValueError, match=r"unknown redaction pattern.*ssn.*choose from"):
        CollectorSettings(redact=["email", "ssn"])
    with pytest.raises(ValueError, match="not a valid regex"):
        CollectorSettings(redact_patterns=["(unclosed"])


# --- where it applies --------------------------------------------------------------------------
def _llm_span(**identifiers: str) -> Span:
    span = make_span(
        attrs={
            **identifiers,
            sc.OPERATION_NAME: "chat",
            sc.REQUEST_MODEL: "gpt-4o",
            sc.INPUT_MESSAGES: json.dumps(
                [{"role": "user", "parts": [{"type": "text", "content": f"I am {EMAIL}"}]}]
            ),
            sc.OUTPUT_MESSAGES: json.dumps(
                [{"role": "assistant", "parts": [{"type": "text", "content": f"Card {CARD}?"}]}]
            ),
            sc.SYSTEM_INSTRUCTIONS: f"Escalate to {EMAIL}",
            "gen_ai.prompt.0.content": f"legacy {EMAIL}",
            "input.value": f"openinference {EMAIL}",
        },
        error=True,
    )
    span.status.message = f"provider rejected {EMAIL}"
    event = span.events.add(time_unix_nano=span.start_time_unix_nano, name="gen_ai.choice")
    event.attributes.extend(key_values({"message": f"to {EMAIL}"}))
    return span


def test_trace_rows_are_redacted_in_both_tables() -> None:
    span = _llm_span(**{sc.USER_ID: EMAIL})  # an identifier, not content: kept as sent
    request = make_request("svc", span)
    assert redact_request(request, Redactor(["email", "card"]))
    batch = normalize_traces(request)
    (trace,), (call,) = batch.traces, batch.llm_calls
    assert "[REDACTED:email]" in call.input_messages and EMAIL not in call.input_messages
    assert "[REDACTED:card]" in call.output_messages and CARD not in call.output_messages
    assert call.system_instructions == "Escalate to [REDACTED:email]"
    assert call.attributes["gen_ai.prompt.0.content"] == "legacy [REDACTED:email]"
    assert call.error_message == "provider rejected [REDACTED:email]"
    assert trace.SpanAttributes[sc.INPUT_MESSAGES] == call.input_messages
    assert trace.SpanAttributes["input.value"] == "openinference [REDACTED:email]"
    assert trace.Events_Attributes == [{"message": "to [REDACTED:email]"}]
    assert trace.StatusMessage == "provider rejected [REDACTED:email]"
    assert trace.SpanAttributes[sc.USER_ID] == EMAIL and call.user_id == EMAIL


def test_without_a_redactor_nothing_changes() -> None:
    batch = normalize_traces(make_request("svc", _llm_span()))
    assert EMAIL in batch.llm_calls[0].input_messages
    assert batch.traces[0].Events_Attributes == [{"message": f"to {EMAIL}"}]


def _log_request(service: str) -> logs_service_pb2.ExportLogsServiceRequest:
    request = logs_service_pb2.ExportLogsServiceRequest()
    resource_logs = request.resource_logs.add()
    resource_logs.resource.attributes.extend(key_values({"service.name": service}))
    record = resource_logs.scope_logs.add().log_records.add()
    record.time_unix_nano = time.time_ns()
    record.body.string_value = f"user {EMAIL} paid with {CARD}"
    record.attributes.extend(key_values({"customer": EMAIL, "count": 3}))
    return request


def test_log_rows_are_redacted() -> None:
    request = _log_request("svc")
    assert redact_request(request, Redactor(["email", "card"]))
    (row,) = normalize_logs(request)
    assert row.Body == "user [REDACTED:email] paid with [REDACTED:card]"
    assert row.LogAttributes == {"customer": "[REDACTED:email]", "count": "3"}


# --- through a running collector ----------------------------------------------------------------
@pytest.fixture(scope="module")
def redacting(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCollector]:
    base = tmp_path_factory.mktemp("redacting")
    running = start_collector(base / "data", base / "log", ASSAY_REDACT="email,card")
    yield running
    running.stop()


@pytest.mark.integration
def test_stored_rows_never_hold_what_was_redacted(redacting: RunningCollector) -> None:
    service = f"redact-{uuid.uuid4().hex[:8]}"
    for path, body in (
        ("/v1/traces", make_request(service, _llm_span()).SerializeToString()),
        ("/v1/logs", _log_request(service).SerializeToString()),
    ):
        response = httpx.post(
            f"{redacting.http_url}{path}",
            content=body,
            headers={"content-type": "application/x-protobuf"},
        )
        assert response.status_code == 200

    (call,) = redacting.wait_for_rows(
        "SELECT input_messages, output_messages, system_instructions, attributes "
        f"FROM assay.llm_calls WHERE service_name = '{service}'",
        1,
    )
    (span,) = redacting.wait_for_rows(
        "SELECT SpanAttributes, Events.Attributes AS events, StatusMessage "
        f"FROM assay.otel_traces WHERE ServiceName = '{service}'",
        1,
    )
    (log,) = redacting.wait_for_rows(
        f"SELECT Body, LogAttributes FROM assay.otel_logs WHERE ServiceName = '{service}'", 1
    )
    assert "[REDACTED:email]" in call["input_messages"]
    assert "[REDACTED:card]" in call["output_messages"]
    assert "[REDACTED:email]" in span["SpanAttributes"][sc.INPUT_MESSAGES]
    assert span["events"] == [{"message": "to [REDACTED:email]"}]
    assert log["Body"] == "user [REDACTED:email] paid with [REDACTED:card]"
    stored = json.dumps([call, span, log], ensure_ascii=False)
    assert EMAIL not in stored and CARD not in stored


@pytest.mark.integration
def test_the_spool_holds_only_redacted_content_readable_by_its_owner_alone(
    tmp_path: Path,
) -> None:
    # Segments are sealed after a minute: what was acknowledged sits in the spool file meanwhile.
    collector = start_collector(
        tmp_path / "data", tmp_path / "log", ASSAY_REDACT="email,card", ASSAY_FLUSH_INTERVAL="60"
    )
    try:
        service = f"spool-{uuid.uuid4().hex[:8]}"
        for path, body in (
            ("/v1/traces", make_request(service, _llm_span()).SerializeToString()),
            ("/v1/logs", _log_request(service).SerializeToString()),
        ):
            response = httpx.post(
                f"{collector.http_url}{path}",
                content=body,
                headers={"content-type": "application/x-protobuf"},
            )
            assert response.status_code == 200
        spool = tmp_path / "data" / "spool"
        spooled = b"".join(path.read_bytes() for path in spool.glob("*.seg"))
        assert service.encode() in spooled and b"[REDACTED:email]" in spooled
        assert EMAIL.encode() not in spooled and CARD.encode() not in spooled
        for folder in (tmp_path / "data", spool):
            assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
        files = [p for p in (tmp_path / "data").rglob("*") if p.is_file()]
        assert files and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in files), [
            (p, oct(p.stat().st_mode)) for p in files if stat.S_IMODE(p.stat().st_mode) != 0o600
        ][:5]
    finally:
        collector.stop()
