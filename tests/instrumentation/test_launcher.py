"""`opentelemetry-instrument` and `assay-instrument` run an unmodified program instrumented:
its LLM calls reach a real collector, each exactly once."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import types
import uuid
from collections.abc import Iterator
from importlib.machinery import ModuleSpec
from pathlib import Path

import pytest

from assay.collector.demo.fake_openai import FakeOpenAI
from assay.instrumentation import semconv
from assay.instrumentation.launcher import program_name, running_program_name
from tests.conftest import RunningCollector
from tests.fakes.fake_bedrock import FakeBedrock

APP = Path(__file__).parent.parent / "apps" / "auto_app.py"
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def fakes() -> Iterator[tuple[FakeOpenAI, FakeBedrock]]:
    with FakeOpenAI() as openai_fake, FakeBedrock() as bedrock_fake:
        yield openai_fake, bedrock_fake


def run_instrumented(
    launcher: str | None,
    app: Path,
    collector: RunningCollector,
    fakes: tuple[FakeOpenAI, FakeBedrock],
    python: str = sys.executable,
    **env: str,
) -> None:
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith(("OTEL_", "ASSAY_"))
    }
    environment.update(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector.grpc_endpoint,
            "ASSAY_TEST_BASE_URL": fakes[0].base_url,
            "ASSAY_TEST_BEDROCK_URL": fakes[1].endpoint_url,
            # the app is a script outside any package: let it import boto3/openai only
            "PYTHONPATH": "",
            **env,
        }
    )
    done = subprocess.run(
        [*([str(BIN / launcher)] if launcher else []), python, str(app)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr


def llm_calls(collector: RunningCollector, service: str) -> list[dict[str, object]]:
    sql = (
        "SELECT provider, request_model, input_tokens FROM assay.llm_calls "
        f"WHERE service_name = '{service}' ORDER BY provider"
    )
    collector.wait_for_rows(sql, 2)
    time.sleep(1.0)  # a duplicate would arrive in the same export; give it time anyway
    return collector.query(sql)


def assert_each_call_once(rows: list[dict[str, object]]) -> None:
    assert [(r["provider"], r["request_model"]) for r in rows] == [
        (semconv.PROVIDER_AWS_BEDROCK, "amazon.nova-lite-v1:0"),
        (semconv.PROVIDER_OPENAI, "gpt-4o-mini"),
    ]
    assert all(isinstance(r["input_tokens"], int) and r["input_tokens"] > 0 for r in rows)


@pytest.mark.subprocess
def test_opentelemetry_instrument_uses_the_entry_points(
    collector: RunningCollector, fakes: tuple[FakeOpenAI, FakeBedrock]
) -> None:
    service = f"otel-instrument-{uuid.uuid4().hex[:8]}"
    run_instrumented("opentelemetry-instrument", APP, collector, fakes, OTEL_SERVICE_NAME=service)
    assert_each_call_once(llm_calls(collector, service))


@pytest.mark.subprocess
def test_assay_instrument_names_the_service_after_the_program(
    collector: RunningCollector, fakes: tuple[FakeOpenAI, FakeBedrock], tmp_path: Path
) -> None:
    # Launched AND importing the one-line setup: still one span per call.
    app = tmp_path / f"checkout_{uuid.uuid4().hex[:8]}.py"
    shutil.copy(APP, app)
    run_instrumented("assay-instrument", app, collector, fakes, ASSAY_TEST_ONE_LINE="1")
    assert_each_call_once(llm_calls(collector, app.stem))


@pytest.mark.subprocess
def test_assay_instrument_runs_a_bare_python_without_an_activated_venv(
    collector: RunningCollector, fakes: tuple[FakeOpenAI, FakeBedrock], tmp_path: Path
) -> None:
    # `.venv/bin/assay-instrument python app.py` from a shell whose PATH has no venv: the
    # `python` found there has no Assay, so the launcher runs the program with its own.
    app = tmp_path / f"orders_{uuid.uuid4().hex[:8]}.py"
    shutil.copy(APP, app)
    path = os.pathsep.join(
        d for d in os.environ.get("PATH", "").split(os.pathsep) if Path(d) != BIN
    )
    run_instrumented("assay-instrument", app, collector, fakes, python="python3", PATH=path)
    assert_each_call_once(llm_calls(collector, app.stem))


@pytest.mark.subprocess
def test_the_one_line_import_names_the_service_after_the_program(
    collector: RunningCollector, fakes: tuple[FakeOpenAI, FakeBedrock], tmp_path: Path
) -> None:
    # `python app.py` with `import assay.instrumentation.auto`: no launcher, no OTEL_SERVICE_NAME.
    app = tmp_path / f"billing_{uuid.uuid4().hex[:8]}.py"
    shutil.copy(APP, app)
    run_instrumented(None, app, collector, fakes, ASSAY_TEST_ONE_LINE="1")
    assert_each_call_once(llm_calls(collector, app.stem))


@pytest.mark.parametrize(
    ("argv0", "main_module", "name"),
    [
        ("/srv/app.py", None, "app"),
        ("/srv/shop/checkout.py", "shop.checkout", "shop.checkout"),
        ("/srv/shop/__main__.py", "shop.__main__", "shop"),
        ("-c", None, None),
        ("", None, None),  # an interactive interpreter
    ],
)
def test_running_program_name(
    monkeypatch: pytest.MonkeyPatch, argv0: str, main_module: str | None, name: str | None
) -> None:
    main = types.ModuleType("__main__")
    main.__spec__ = ModuleSpec(main_module, None) if main_module else None
    monkeypatch.setitem(sys.modules, "__main__", main)
    monkeypatch.setattr(sys, "argv", [argv0])
    assert running_program_name() == name


@pytest.mark.parametrize(
    ("command", "name"),
    [
        (["python", "app.py"], "app"),
        (["python3", "-u", "src/app.py", "--port", "80"], "app"),
        (["/usr/bin/python3.11", "-m", "shop.checkout"], "shop.checkout"),
        (["python", "-mshop.checkout"], "shop.checkout"),
        (["python", "-c", "print(1)"], None),
        (["gunicorn", "app:app"], "gunicorn"),
        ([], None),
    ],
)
def test_program_name(command: list[str], name: str | None) -> None:
    assert program_name(command) == name


FAKE_CONFIGURATOR = """
from opentelemetry.sdk._configuration import _BaseConfigurator


class Configurator(_BaseConfigurator):
    def _configure(self, **kwargs):
        print("other configurator ran", flush=True)
"""
SHOW_PROVIDER = "from opentelemetry import trace; print(type(trace.get_tracer_provider()).__name__)"


@pytest.mark.subprocess
@pytest.mark.parametrize(
    ("chosen", "ran", "provider"),
    [(None, True, "ProxyTracerProvider"), ("assay", False, "TracerProvider")],
)
def test_another_configurator_keeps_its_place_unless_assay_is_chosen(
    tmp_path: Path, chosen: str | None, ran: bool, provider: str
) -> None:
    # An installed distribution with its own configurator, e.g. opentelemetry-distro.
    (tmp_path / "other_configurator.py").write_text(FAKE_CONFIGURATOR)
    dist_info = tmp_path / "other_configurator-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: other-configurator\n")
    (dist_info / "entry_points.txt").write_text(
        "[opentelemetry_configurator]\nother = other_configurator:Configurator\n"
    )
    environment = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    environment["PYTHONPATH"] = str(tmp_path)
    if chosen:
        environment["OTEL_PYTHON_CONFIGURATOR"] = chosen
    done = subprocess.run(
        [str(BIN / "opentelemetry-instrument"), sys.executable, "-c", SHOW_PROVIDER],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.split()
    assert done.stdout.count("other configurator ran") == (1 if ran else 0), done.stdout
    assert lines[-1] == provider
