"""What the apps send and the tests look for. Apart from the apps, because importing an app
instruments the importing process (its first import is `assay.instrumentation.auto`), and a
test process must not instrument itself by reading a constant."""

from __future__ import annotations

QUESTION = "What is the capital of France?"
MESSAGES = [{"role": "user", "content": QUESTION}]
# The model each client of http_clients_app.py asks.
MODELS = {
    "gemini": "gemini-2.5-flash",
    "mistral": "mistral-small-latest",
    "cohere": "command-r",
    "ollama": "llama3.2",
}
PROMPT_NAME, PROMPT_VERSION = "capital-question", "v3"  # own_spans_app.py's prompt
