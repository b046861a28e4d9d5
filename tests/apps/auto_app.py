"""A service with no Assay code of its own, run under `opentelemetry-instrument` or
`assay-instrument` by the launcher tests: one OpenAI chat call and one Bedrock Converse call.

With ASSAY_TEST_ONE_LINE=1 it also does the one-line import, as a service that both
imports Assay and is launched by a wrapper would; its calls must still be reported once.
"""

from __future__ import annotations

import os

import boto3
import openai

if os.environ.get("ASSAY_TEST_ONE_LINE") == "1":
    import assay.instrumentation.auto  # noqa: F401


def main() -> None:
    client = openai.OpenAI(base_url=os.environ["ASSAY_TEST_BASE_URL"], api_key="k", max_retries=0)
    client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "What is the capital of France?"}],
    )
    bedrock = boto3.client(
        "bedrock-runtime",
        endpoint_url=os.environ["ASSAY_TEST_BEDROCK_URL"],
        region_name="us-east-1",
        aws_access_key_id="AKIDFAKE",
        aws_secret_access_key="fake-secret",
    )
    bedrock.converse(
        modelId="amazon.nova-lite-v1:0",
        messages=[{"role": "user", "content": [{"text": "And of Italy?"}]}],
    )


if __name__ == "__main__":
    main()
