"""The demo: a local fake LLM provider and instrumented services that send realistic traffic."""

from __future__ import annotations


def run_demo(endpoint: str, calls: int = 200, quiet: bool = False) -> str:
    from assay.collector.demo.traffic import run_demo as _run

    return _run(endpoint, calls, quiet)


__all__ = ["run_demo"]
