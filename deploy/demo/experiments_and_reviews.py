"""What `assay demo` does not send, for the compose stack's `demo` profile: experiment runs of
the quickstart's two prompts over its golden dataset (the Experiments dashboard, and drift on
the Evaluations one), and a reviewer's 👍/👎 on some evaluated calls (human feedback, and how
the evaluators agree with people).

Run with the collector's API at $ASSAY_URL and its OTLP endpoint at
$OTEL_EXPORTER_OTLP_ENDPOINT: `python deploy/demo/experiments_and_reviews.py`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

import httpx
from openai import OpenAI

from assay.collector.demo.quickstart import CAPITALS, PROMPT_A, PROMPT_B, quickstart_fake
from assay.evaluators import Dataset, contains, evaluate, exact_match, length

REVIEWER = "demo-reviewer"
REVIEWS = 12


def _task(client: OpenAI, prompt: str) -> Callable[[str], str]:
    def answer(question: str) -> str:
        response = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "system", "content": prompt}, {"role": "user", "content": question}],
        )
        return response.choices[0].message.content or ""

    return answer


def run_experiments() -> None:
    fake = quickstart_fake()
    try:
        client = OpenAI(base_url=fake.base_url, api_key="fake")
        dataset = Dataset("capitals", CAPITALS, description="Capital cities")
        dataset.push()
        for name, prompt in (("demo-prompt-a", PROMPT_A), ("demo-prompt-b", PROMPT_B)):
            evaluate(
                dataset,
                _task(client, prompt),
                # `length` runs online too (deploy/collector/assay.yaml): the drift panel
                # compares the two.
                [exact_match(), contains(ignore_case=True), length(max_chars=2000)],
                experiment=name,
                params={"prompt": prompt, "model": "gpt-4o-mini"},
            )
    finally:
        fake.stop()


def review(url: str) -> int:
    """Grade recent calls an online evaluator scored: 👍 when every score passed, else 👎."""
    found = httpx.post(
        f"{url}/api/query",
        json={
            "sql": "SELECT span_id, min(passed) AS all_passed FROM scores "
            # a call's scores: a run's (level trace) have no span id and are no call to grade
            "WHERE source = 'online' AND passed IS NOT NULL AND span_id != '' "
            "AND timestamp > now() - INTERVAL 1 HOUR "
            f"GROUP BY span_id ORDER BY max(timestamp) DESC LIMIT {REVIEWS}"
        },
        timeout=30,
    )
    found.raise_for_status()
    graded = 0
    for row in found.json()["rows"]:
        answer = httpx.post(
            f"{url}/api/feedback",
            json={
                "span_id": row["span_id"],
                "value": int(bool(row["all_passed"])),
                "author": REVIEWER,
            },
            timeout=30,
        )
        answer.raise_for_status()
        graded += 1
    return graded


def main() -> None:
    url = os.environ.get("ASSAY_URL", "http://localhost:4318").rstrip("/")
    run_experiments()
    print(f"two experiment runs stored; {review(url)} calls reviewed", file=sys.stderr)


if __name__ == "__main__":
    main()
