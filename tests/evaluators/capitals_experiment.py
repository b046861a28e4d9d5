"""An experiment file for `assay eval run`: the quickstart's capitals under prompt A or B.

The environment picks the prompt (CAPITALS_PROMPT=a|b), the run's name (CAPITALS_EXPERIMENT)
and the fake model (OPENAI_BASE_URL); CAPITALS_CRASH=1 makes the file fail before running.
"""

from __future__ import annotations

import os

from openai import OpenAI

from assay.collector.demo.quickstart import CAPITALS, PROMPT_A, PROMPT_B
from assay.evaluators import Dataset, contains, evaluate, exact_match

if os.environ.get("CAPITALS_CRASH"):
    raise RuntimeError("the experiment file is broken")

PROMPT = {"a": PROMPT_A, "b": PROMPT_B}[os.environ["CAPITALS_PROMPT"]]
client = OpenAI(api_key="fake", max_retries=0)


def answer(question: str) -> str:
    response = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "system", "content": PROMPT}, {"role": "user", "content": question}],
    )
    return response.choices[0].message.content or ""


evaluate(
    Dataset(os.environ.get("CAPITALS_DATASET", "capitals"), CAPITALS),
    answer,
    [exact_match(), contains(ignore_case=True)],
    experiment=os.environ["CAPITALS_EXPERIMENT"],
    params={"prompt": PROMPT, "model": "gpt-4o-mini"},
    concurrency=4,
)
