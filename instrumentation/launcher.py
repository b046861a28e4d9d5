"""`assay-instrument python app.py`: run a program instrumented, with Assay's defaults.

It is `opentelemetry-instrument` (the same options, the same `sitecustomize` machinery
that instruments the program before its first line) with these defaults, each one
only where the environment does not already say otherwise:

- the SDK is set up by Assay's configurator (`OTEL_PYTHON_CONFIGURATOR=assay`): spans go
  over OTLP to `OTEL_EXPORTER_OTLP_ENDPOINT`, by default a collector on localhost:4317;
- the service is named after the program (`app.py` → `app`, `-m pkg.app` → `pkg.app`)
  when neither `OTEL_SERVICE_NAME`, `--service_name` nor `OTEL_RESOURCE_ATTRIBUTES` names it;
- prompts and responses are captured unless `ASSAY_CAPTURE_CONTENT=false`;
- a bare `python` (`python3`, `python3.X` of this version) is this interpreter, the one
  Assay is installed in: `.venv/bin/assay-instrument python app.py` works without an
  activated venv, where `python` on the PATH would be one without Assay.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

from assay.instrumentation.configurator import NAME as CONFIGURATOR_NAME

_SERVICE_NAME_ENV = "OTEL_SERVICE_NAME"
_RESOURCE_ENV = "OTEL_RESOURCE_ATTRIBUTES"


def program_name(arguments: Sequence[str]) -> str | None:
    """The name of the program a command line runs: a script's stem or a `-m` module."""
    # arguments: the command and its arguments, e.g. ["python", "-u", "app.py", "--port", "80"]
    if not arguments:
        return None
    command = Path(arguments[0]).name
    if not command.startswith("python"):
        return command  # `assay-instrument gunicorn app:app`: the command is the program
    rest = list(arguments[1:])
    while rest:
        argument = rest.pop(0)
        if argument == "-m":
            return rest[0] if rest else None
        if argument.startswith("-m") and len(argument) > 2:
            return argument[2:]
        if argument in ("-c", "-"):
            return None
        if argument.startswith("-"):
            continue
        return Path(argument).stem or None
    return None


def running_program_name() -> str | None:
    """The name of the program this process runs, as `program_name` gives it for its command.

    For the one-line setup (`import assay.instrumentation.auto`), which has no command line
    to read: `python -m shop.checkout` runs the module `shop.checkout` (`python -m shop`
    runs `shop.__main__`: `shop`), `python app.py` has `app.py` as `sys.argv[0]`, and
    `python -c` or an interactive interpreter names nothing.
    """
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    module = getattr(spec, "name", None)
    if module and module != "__main__":
        return module.removesuffix(".__main__")
    script = sys.argv[0] if sys.argv else ""
    if script in ("", "-c", "-"):
        return None
    return Path(script).stem or None


def environment_names_the_service() -> bool:
    """True when `OTEL_SERVICE_NAME` or `OTEL_RESOURCE_ATTRIBUTES` names the service."""
    if os.environ.get(_SERVICE_NAME_ENV):
        return True
    return "service.name=" in os.environ.get(_RESOURCE_ENV, "")


def _names_the_service(argv: Sequence[str]) -> bool:
    if environment_names_the_service():
        return True
    return any(a == "--service_name" or a.startswith("--service_name=") for a in argv)


def _command_index(argv: Sequence[str]) -> int:
    """Where the program's command line starts: after the `--option value` pairs."""
    index = 0
    while index < len(argv) and argv[index].startswith("--"):
        index += 1 if "=" in argv[index] else 2
    return index


def _command(argv: Sequence[str]) -> list[str]:
    """The program's command line: what follows the `--option value` pairs of the launcher."""
    return list(argv[_command_index(argv) :])


def _this_python(command: str) -> bool:
    """True for a bare name of this interpreter: `python`, `python3`, `python3.X` (this X)."""
    major, minor = sys.version_info[:2]
    return command in ("python", f"python{major}", f"python{major}.{minor}")


def main() -> None:
    os.environ.setdefault("OTEL_PYTHON_CONFIGURATOR", CONFIGURATOR_NAME)
    argv = sys.argv[1:]
    if not _names_the_service(argv):
        name = program_name(_command(argv))
        if name:
            os.environ[_SERVICE_NAME_ENV] = name
    index = _command_index(argv)
    if index < len(argv) and _this_python(argv[index]) and sys.executable:
        sys.argv[1 + index] = sys.executable
    from opentelemetry.instrumentation.auto_instrumentation import run

    run()  # replaces this process with the program (exec), as opentelemetry-instrument does


if __name__ == "__main__":
    main()
