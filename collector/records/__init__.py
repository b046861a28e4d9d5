"""What the two faces (api/ JSON, ui/ pages) read and write beyond spans, over the Store: calls,
feedback, datasets and experiments. The faces parse requests and shape responses; neither
imports the other (an import-linter contract in pyproject.toml)."""
