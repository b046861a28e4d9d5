"""Per-peer virtual environments for the interop tests and the overhead benchmark: each peer
instrumentation pins its own OpenTelemetry versions, so each lives in a venv of its own, built
from the package registry on first use and cached (the tests' in `.peer-venvs/`, gitignored;
`ASSAY_PEER_VENVS` moves it). The pins that make a peer install are here, once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("ASSAY_PEER_VENVS", ROOT / ".peer-venvs"))

_EXPORT = ["openai", "httpx", "opentelemetry-sdk", "opentelemetry-exporter-otlp-proto-http"]

# The installs peers.md found to work (Nov 2026, Python 3.11).
OPENAI_V2 = [
    "opentelemetry-instrumentation-openai-v2==2.4b0",
    # 1.3b0 drops a module openai-v2 2.4b0 imports
    "opentelemetry-util-genai==1.1b0",
]
OPENLIT = [
    "openlit==1.45.0",
    # an unpinned install resolves to an old OpenLIT that fails at import
    "opentelemetry-sdk==1.39.1",
    "opentelemetry-api==1.39.1",
    "opentelemetry-exporter-otlp==1.39.1",
    "opentelemetry-semantic-conventions==0.60b1",
    "opentelemetry-instrumentation==0.60b1",
]

# Splunk's opentelemetry-util-genai, the peer that sends gen_ai.evaluation.result events: 0.1.15
# imports `opentelemetry._events`, which the OpenTelemetry API dropped after 1.38.
SPLUNK_GENAI = [
    "splunk-otel-util-genai==0.1.15",
    "opentelemetry-api==1.38.0",
    "opentelemetry-sdk==1.38.0",
    "opentelemetry-exporter-otlp-proto-http==1.38.0",
    "opentelemetry-semantic-conventions==0.59b0",
    "opentelemetry-instrumentation==0.59b0",
]

# What each peer needs, as peers.md found installs that work (Nov 2026, Python 3.11).
PEERS: dict[str, list[str]] = {
    "openllmetry": [
        *_EXPORT,
        "anthropic",
        "opentelemetry-instrumentation-openai>=0.47",
        "opentelemetry-instrumentation-anthropic>=0.47",
    ],
    "openinference": [*_EXPORT, "openinference-instrumentation-openai>=0.1.30"],
    "openai-v2": [*_EXPORT, *OPENAI_V2],
    "openlit": ["openai", "httpx", *OPENLIT],
    "splunk-genai": SPLUNK_GENAI,
}


class PeerUnavailable(RuntimeError):
    """The peer's venv could not be built (no registry, a broken release); the output says why."""


def peer_python(peer: str) -> Path:
    """The Python of `peer`'s venv for the interop tests, built on first use."""
    from tests import tiers  # here, not at the top: bench/overhead.py imports this module too

    tiers.require_tier("peers", f"runs the {peer} peer")
    return build_venv(CACHE / peer, PEERS[peer])


def build_venv(venv: Path, requirements: list[str]) -> Path:
    """The Python of a venv holding `requirements`, built on first use; a changed requirement
    list rebuilds it. Raises PeerUnavailable with pip's output when it cannot be built."""
    stamp_text = "\n".join(requirements)
    python = venv / "bin" / "python"
    stamp = venv / ".requirements"
    if python.exists() and stamp.exists() and stamp.read_text() == stamp_text:
        return python
    venv.parent.mkdir(parents=True, exist_ok=True)
    steps = [
        [sys.executable, "-m", "venv", "--clear", str(venv)],
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            *requirements,
        ],
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            raise PeerUnavailable(
                f"building {venv.name} failed ({' '.join(step[:4])} ...):\n"
                f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
            )
    stamp.write_text(stamp_text)
    return python


if __name__ == "__main__":  # build them ahead: python -m tests.peers.venvs [peer ...]
    for name in sys.argv[1:] or list(PEERS):
        print(name, peer_python(name), flush=True)
