"""The SDK set-up `opentelemetry-instrument` runs when Assay is installed (its configurator).

OpenTelemetry's auto-instrumentation calls one `opentelemetry_configurator` entry point
before it loads the instrumentors. Assay's sets up tracing as `instrument()` does: a
global SDK tracer provider with a batch processor and an OTLP exporter aimed at
`OTEL_EXPORTER_OTLP_ENDPOINT` (default localhost:4317). The instrumentors themselves
are loaded by the machinery from their `opentelemetry_instrumentor` entry points.

Another configurator installed beside it (e.g. `opentelemetry-distro`'s) keeps its
place: unless `OTEL_PYTHON_CONFIGURATOR=assay` chooses Assay's, this one hands over
to it, so installing Assay never changes an existing OpenTelemetry set-up.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from opentelemetry.instrumentation.environment_variables import OTEL_PYTHON_CONFIGURATOR
from opentelemetry.sdk._configuration import _BaseConfigurator
from opentelemetry.util._importlib_metadata import entry_points

NAME = "assay"  # the entry-point name, the value of OTEL_PYTHON_CONFIGURATOR that picks it

logger = logging.getLogger("assay.instrumentation")


class AssayConfigurator(_BaseConfigurator):
    """Sets the global tracer provider up with Assay's defaults, or defers to another one."""

    def _configure(self, **kwargs: Any) -> None:
        if os.environ.get(OTEL_PYTHON_CONFIGURATOR) != NAME:
            for entry_point in entry_points(group="opentelemetry_configurator"):
                if entry_point.name != NAME:
                    logger.debug("Deferring to the %s configurator", entry_point.name)
                    entry_point.load()().configure(**kwargs)
                    return
        from assay.instrumentation import _global_provider, _register_exit_flush

        _, processor = _global_provider(None, None, None, None)
        _register_exit_flush(processor)
