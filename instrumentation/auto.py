"""One-line setup: `import assay.instrumentation.auto` calls `instrument()` from the environment."""

from assay.instrumentation import instrument

instrument()
