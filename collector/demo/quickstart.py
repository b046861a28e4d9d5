"""The quickstart's golden dataset, its two prompts, and the fake model's scripted answers.

Prompt B asks for the city name only and the fake model then answers with the name (wrong
once, on Canada); under prompt A it answers in a sentence, naming the wrong city for four
questions. So exact match is 0 for A and 0.9 for B, and "contains the answer" is 0.6 for A
and 0.9 for B, with one item regressed.
"""

from __future__ import annotations

from assay.collector.demo.fake_openai import FakeOpenAI, Script

__all__ = ["CAPITALS", "PROMPT_A", "PROMPT_B", "quickstart_fake", "quickstart_script"]

PROMPT_A = "You are a helpful assistant."
PROMPT_B = "You are a geography expert. Answer with the city name only."
_B_MARKER = "city name only"

CAPITALS = [
    {"input": "What is the capital of France?", "expected": "Paris"},
    {"input": "What is the capital of Japan?", "expected": "Tokyo"},
    {"input": "What is the capital of Australia?", "expected": "Canberra"},
    {"input": "What is the capital of Canada?", "expected": "Ottawa"},
    {"input": "What is the capital of Brazil?", "expected": "Brasília"},
    {"input": "What is the capital of Turkey?", "expected": "Ankara"},
    {"input": "What is the capital of Kenya?", "expected": "Nairobi"},
    {"input": "What is the capital of Switzerland?", "expected": "Bern"},
    {"input": "What is the capital of Egypt?", "expected": "Cairo"},
    {"input": "What is the capital of Norway?", "expected": "Oslo"},
]
# What the fake model gets wrong under each prompt (question → the city it names).
_WRONG_UNDER_A = {
    "What is the capital of Australia?": "Sydney",
    "What is the capital of Brazil?": "Rio de Janeiro",
    "What is the capital of Turkey?": "Istanbul",
    "What is the capital of Switzerland?": "Zurich",
}
_WRONG_UNDER_B = {"What is the capital of Canada?": "Toronto"}


def quickstart_script() -> Script:
    """Prompt B's answers first: its requests contain the question too."""
    script: dict[str | tuple[str, ...], str] = {}
    for item in CAPITALS:
        question, answer = item["input"], item["expected"]
        script[(question, _B_MARKER)] = _WRONG_UNDER_B.get(question, answer)
    for item in CAPITALS:
        question, answer = item["input"], item["expected"]
        city = _WRONG_UNDER_A.get(question, answer)
        country = question.rsplit(" ", 1)[-1].rstrip("?")
        script[question] = f"Good question! The capital of {country} is {city}."
    return script


def quickstart_fake(**options: object) -> FakeOpenAI:
    """A started fake OpenAI server answering the quickstart's questions as scripted."""
    return FakeOpenAI(script=quickstart_script(), **options).start()  # type: ignore[arg-type]
