"""How an instrumented process ends: its spans are sent; a collector that is down cannot hang it.

A script makes its calls and ends, with no flush of its own: the exit flush sends what the
batch processor holds, however the interpreter leaves (the end of the script, `sys.exit(1)`,
an uncaught exception, Ctrl-C, SIGTERM turned into `sys.exit` as the README shows). A collector
that accepts connections but never answers (hung, or a black hole behind a firewall) would
hold that flush for the exporter's whole timeout per batch (`OTEL_EXPORTER_OTLP_TIMEOUT`; set
to an hour here, so that a flush it bounds is told apart from one it does not without timing
anything): the exit flush and `force_flush()` give up after their own time instead.
"""

from __future__ import annotations

import socket
import subprocess
import uuid
from collections.abc import Iterator

import pytest

from assay.collector.demo.fake_openai import FakeOpenAI
from tests.conftest import RunningCollector
from tests.instrumentation.test_setup import run_python

ONE_CALL = """
import os, signal, sys
from assay.instrumentation import force_flush, instrument
import openai

instrument()
client = openai.OpenAI(base_url=os.environ["BASE_URL"], api_key="test-key", max_retries=0)
client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
"""

# How each script leaves after its call; none flushes.
ENDINGS = {
    "end of script": "",
    "sys.exit(1)": "sys.exit(1)",
    "uncaught exception": "raise RuntimeError('the app failed')",
    # Python's KeyboardInterrupt handler installed first: a process started with SIGINT ignored
    # (a background job of a non-interactive shell, as CI may be) inherits the ignore, and
    # Python then installs none. Raised in the main thread (raise_signal, not os.kill), so the
    # handler runs before the next line rather than on whichever thread the kernel picks.
    "Ctrl-C": (
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "signal.raise_signal(signal.SIGINT); signal.pause()"
    ),
    "SIGTERM as sys.exit": (
        "signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))\n"
        "signal.raise_signal(signal.SIGTERM); signal.pause()"
    ),
}


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def unanswering_endpoint() -> Iterator[str]:
    """A port that takes connections and never answers: a hung collector, a black hole."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)  # connections complete in the kernel's queue; none is accepted
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


def endpoint_of(collector: RunningCollector, protocol: str) -> str:
    return collector.grpc_endpoint if protocol == "grpc" else collector.http_url


@pytest.mark.subprocess
@pytest.mark.parametrize("ending", list(ENDINGS))
def test_a_script_that_ends_without_flushing_delivers_its_span(
    collector: RunningCollector, fake: FakeOpenAI, ending: str
) -> None:
    service = f"exit-{uuid.uuid4().hex[:8]}"
    result = run_python(
        ONE_CALL + ENDINGS[ending],
        BASE_URL=fake.base_url,
        OTEL_SERVICE_NAME=service,
        OTEL_EXPORTER_OTLP_ENDPOINT=collector.grpc_endpoint,
        OTEL_BSP_SCHEDULE_DELAY="600000",  # only the exit flush can send it in time
        check=False,
    )

    assert result.returncode != 0 or ending == "end of script", result.stderr
    collector.wait_for_rows(
        f"SELECT span_id FROM assay.llm_calls WHERE service_name = '{service}'", 1
    )
    collector.wait_until_stored()
    rows = collector.query(f"SELECT span_id FROM assay.llm_calls WHERE service_name = '{service}'")
    assert len(rows) == 1


def _against_a_collector_that_never_answers(
    script: str, fake: FakeOpenAI, endpoint: str, protocol: str, exit_flush_timeout: str
) -> subprocess.CompletedProcess[str]:
    """`script` exporting to `endpoint`, whose exports would each wait the exporter's hour, and
    only the exit flush (or the script itself) flushing."""
    return run_python(
        script,
        BASE_URL=fake.base_url,
        OTEL_EXPORTER_OTLP_PROTOCOL=protocol,
        OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
        OTEL_EXPORTER_OTLP_TIMEOUT="3600",
        OTEL_BSP_SCHEDULE_DELAY="600000",
        ASSAY_EXIT_FLUSH_TIMEOUT=exit_flush_timeout,
    )


@pytest.mark.subprocess
@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_a_collector_that_never_answers_does_not_hang_the_exit(
    fake: FakeOpenAI, unanswering_endpoint: str, protocol: str
) -> None:
    # Before the bound, this exit waited out the exporter's hour (run_python gives up at 120 s).
    result = _against_a_collector_that_never_answers(
        ONE_CALL + "for n in range(600): client.chat.completions.create(model='gpt-4o-mini', "
        "messages=[{'role': 'user', 'content': f'call {n}'}])",
        fake,
        unanswering_endpoint,
        protocol,
        exit_flush_timeout="1",
    )

    # 601 spans: one batch of 512 taken by the export that never ends, the rest still queued;
    # none reached a collector, so each is counted.
    assert "Assay dropped 601 spans at exit" in result.stderr
    assert "ASSAY_EXIT_FLUSH_TIMEOUT" in result.stderr


@pytest.mark.subprocess
@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_force_flush_returns_by_its_timeout(
    fake: FakeOpenAI, unanswering_endpoint: str, protocol: str
) -> None:
    result = _against_a_collector_that_never_answers(
        ONE_CALL
        + "print('flushed' if force_flush(timeout_millis=300) else 'not flushed')\n"
        + "print('again' if force_flush(timeout_millis=300) else 'not again')",
        fake,
        unanswering_endpoint,
        protocol,
        exit_flush_timeout="0.5",
    )

    assert result.stdout.split() == ["not", "flushed", "not", "again"]


@pytest.mark.subprocess
def test_force_flush_says_true_once_the_collector_took_the_spans(
    collector: RunningCollector, fake: FakeOpenAI
) -> None:
    service = f"flush-{uuid.uuid4().hex[:8]}"
    result = run_python(
        ONE_CALL + "print(force_flush(timeout_millis=30000))\nos._exit(0)  # no exit flush",
        BASE_URL=fake.base_url,
        OTEL_SERVICE_NAME=service,
        OTEL_EXPORTER_OTLP_ENDPOINT=collector.grpc_endpoint,
        OTEL_BSP_SCHEDULE_DELAY="600000",
    )

    assert result.stdout.strip() == "True"
    collector.wait_for_rows(f"SELECT 1 FROM assay.llm_calls WHERE service_name = '{service}'", 1)
