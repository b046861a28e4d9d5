"""`assay demo`: a fake LLM provider, three instrumented services and an agent sending traffic
through it."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from assay.collector.demo.fake_openai import FakeOpenAI
from assay.collector.demo.profiles import AGENT_SERVICE, PROFILES

_MODULES = {AGENT_SERVICE: "agent"}  # the module a service runs; service.py for the others


def run_demo(endpoint: str, calls: int = 200, quiet: bool = False) -> str:
    """Send about `calls` LLM calls from the three services to the collector at `endpoint`
    (OTLP/gRPC), and the agent's runs on top (as many calls as one service); return a summary."""
    per_service = max(1, calls // len(PROFILES))
    services = [*PROFILES, AGENT_SERVICE]
    started = time.monotonic()
    with FakeOpenAI(latency=0.01) as fake:
        processes = []
        for seed, service in enumerate(services, start=1):
            env = {
                **os.environ,
                "OTEL_SERVICE_NAME": service,
                "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
                "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
                "ASSAY_DEMO_BASE_URL": fake.base_url,
                "ASSAY_DEMO_CALLS": str(per_service),
                "ASSAY_DEMO_SEED": str(seed),
            }
            env.pop("OTEL_TRACES_EXPORTER", None)
            processes.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        f"assay.collector.demo.{_MODULES.get(service, 'service')}",
                    ],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL if quiet else None,
                )
            )
        codes = [p.wait() for p in processes]
    if any(codes):
        raise RuntimeError(f"a demo service failed (exit codes {codes})")
    seconds = time.monotonic() - started
    return (
        f"about {per_service * len(services)} LLM calls from {len(services)} services "
        f"({', '.join(services)}) in {seconds:.1f}s"
    )
