"""The fake Anthropic Messages API ships in the package (`assay fake-provider` serves it)."""

from assay.collector.demo.fake_anthropic import (
    FAIL_400,
    FAIL_429,
    FAIL_529,
    FAIL_MIDSTREAM,
    RESPONSE_MODELS,
    FakeAnthropic,
)

__all__ = ["FAIL_400", "FAIL_429", "FAIL_529", "FAIL_MIDSTREAM", "RESPONSE_MODELS", "FakeAnthropic"]
