"""`assay eval run` on the capitals experiment file, as CI runs it (a subprocess with the
collector and the fake model in its environment); shared by the experiment and UI tests."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from assay.collector.demo.fake_openai import FakeOpenAI
from tests.conftest import RunningCollector

EXPERIMENT_FILE = Path(__file__).with_name("capitals_experiment.py")


@dataclass
class GateRun:
    code: int
    stdout: str
    stderr: str


def eval_run(
    collector: RunningCollector, fake: FakeOpenAI, experiment: Path, *args: str, **env: str
) -> GateRun:
    """`assay eval run experiment *args` against the collector and the fake model, with `env`."""
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith("OTEL_EXPORTER")
    }
    environment.update(ASSAY_URL=collector.http_url, OPENAI_BASE_URL=fake.base_url, COLUMNS="160")
    environment.update(env)  # may set COLUMNS too
    done = subprocess.run(
        [sys.executable, "-m", "assay.collector", "eval", "run", str(experiment), *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    return GateRun(done.returncode, done.stdout, done.stderr)


def run_gate(
    collector: RunningCollector,
    fake: FakeOpenAI,
    prompt: str,
    name: str,
    *args: str,
    dataset: str,
    **env: str,
) -> GateRun:
    return eval_run(
        collector,
        fake,
        EXPERIMENT_FILE,
        *args,
        CAPITALS_PROMPT=prompt,
        CAPITALS_EXPERIMENT=name,
        CAPITALS_DATASET=dataset,
        **env,
    )
