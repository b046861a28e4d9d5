"""A service whose structured-output call stops at max_tokens: openai's `parse()` raises
LengthFinishReasonError on the whole answer, which the provider billed. Prints, as JSON, the
answer's usage the error carries."""

from __future__ import annotations

import json
import os

import openai
from pydantic import BaseModel

import assay.instrumentation.auto  # noqa: F401
from assay.instrumentation import force_flush
from tests.apps.values import QUESTION


class Capital(BaseModel):
    city: str
    country: str


def main() -> None:
    client = openai.OpenAI(base_url=os.environ["ASSAY_TEST_BASE_URL"], api_key="k", max_retries=0)
    out: dict[str, object] = {}
    try:
        client.chat.completions.parse(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": QUESTION}],
            response_format=Capital,
            max_tokens=3,
        )
    except openai.LengthFinishReasonError as exc:
        out["error"] = type(exc).__name__
        out["usage"] = exc.completion.usage.model_dump() if exc.completion.usage else None
    force_flush()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
