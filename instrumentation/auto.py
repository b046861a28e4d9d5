"""One-line setup: `import assay.instrumentation.auto` calls `instrument()` from the environment.

The service is named after the program (`python app.py` → `app`, `python -m shop.checkout` →
`shop.checkout`), as `assay-instrument` names it, unless `OTEL_SERVICE_NAME` or
`OTEL_RESOURCE_ATTRIBUTES` names it (without either the SDK would say `unknown_service:python`).
"""

from assay.instrumentation import instrument
from assay.instrumentation.launcher import environment_names_the_service, running_program_name

instrument(service_name=None if environment_names_the_service() else running_program_name())
