"""Online evaluation: rules pick stored LLM calls (and finished runs), evaluators score them off
the ingest path.

- `config.py`: the `evaluation:` section of assay.yaml (rules, limits), checked at load.
- `rules.py`: rules compiled to evaluators once at start-up; per-trace sampling.
- `online.py`: the writer offers every stored `llm_calls` row; jobs wait in a bounded queue
  that drops the oldest when full, so ingest never waits on evaluation; a worker thread runs
  them on its own event loop (a concurrency limit per evaluator, a CPU share) and writes the
  scores in batches.
- `runs.py`: trace- and session-level rules, run on agent runs and conversations once they are
  complete.
"""
