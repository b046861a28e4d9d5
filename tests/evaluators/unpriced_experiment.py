"""An experiment file for `assay eval run` whose task makes calls the price table cannot price.

UNPRICED_MODE=mixed: item "priced" calls gpt-4o-mini; item "house" calls a model the table lacks
(unpriced, succeeded); item "broken" calls gpt-4o-mini, then a model that fails (unpriced,
failed) and answers anyway. UNPRICED_MODE=priced: every item calls gpt-4o-mini once. The run's
name is UNPRICED_EXPERIMENT, its dataset UNPRICED_DATASET, the model OPENAI_BASE_URL.
"""

from __future__ import annotations

import contextlib
import os

import openai
from openai import OpenAI

from assay.evaluators import Dataset, cost_budget, evaluate

MIXED = os.environ["UNPRICED_MODE"] == "mixed"
client = OpenAI(api_key="fake", max_retries=0)


def ask(model: str, question: str) -> str:
    response = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": question}]
    )
    return response.choices[0].message.content or ""


def answer(question: str) -> str:
    if not MIXED or question == "priced":
        return ask("gpt-4o-mini", question)
    if question == "house":
        return ask("house-model-7b", question)
    first = ask("gpt-4o-mini", question)
    with contextlib.suppress(openai.APIStatusError):  # the item goes on with its first answer
        ask("fail-500", question)
    return first


def answered(output: str) -> bool:
    return bool(output)


evaluate(
    Dataset(
        os.environ["UNPRICED_DATASET"],
        [{"id": name, "input": name} for name in ("priced", "house", "broken")],
    ),
    answer,
    [answered, cost_budget(usd=1.0)],
    experiment=os.environ["UNPRICED_EXPERIMENT"],
    concurrency=1,
)
