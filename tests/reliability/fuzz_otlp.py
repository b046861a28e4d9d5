"""Coverage-guided fuzzing (atheris/libFuzzer) of the OTLP decoders and the normalizer.

Run by tests/reliability/test_fuzz.py with a bounded number of runs; by hand for longer:
`.venv/bin/python tests/reliability/fuzz_otlp.py -runs=1000000`.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from assay.collector.normalize.logs import normalize_logs
    from assay.collector.normalize.otlp import InvalidRequest, decode_json, decode_protobuf
    from assay.collector.normalize.traces import normalize_traces


def one_input(data: bytes) -> None:
    if not data:
        return
    decode = decode_json if data[0] & 1 else decode_protobuf
    signal = "logs" if data[0] & 2 else "traces"
    try:
        request = decode(signal, data[1:])
    except InvalidRequest:
        return
    if signal == "traces":
        normalize_traces(request)  # type: ignore[arg-type]
    else:
        normalize_logs(request)  # type: ignore[arg-type]


if __name__ == "__main__":
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
