"""The Assay collector: OTLP in, ClickHouse rows out, and the API, UI and CLI over them.

A span's way through, stage by stage (the order on disk):

1. receive: `receivers/grpc.py`, `receivers/http.py` decode an OTLP export request;
   `receivers/intake.py` checks it against what the store can hold (`receivers/validation.py`)
   and redacts content in place (`receivers/content.py` with `redaction.py`).
2. spool: `pipeline.py` `Pipeline.submit` appends the request, still raw OTLP protobuf, to the
   spool (`spool.py`) and only then acknowledges it. Nothing is normalized yet, so a replay
   after a crash normalizes again and spool records never need a migration.
3. normalize: the reader thread (`pipeline.py`) takes the spool's sealed segments in order and
   turns them into rows (`normalize/`: traces, LLM calls in every dialect, logs, metrics, scores
   sent as events); normalizing is pure, it reaches no store (an import contract in
   pyproject.toml).
4. store: the writer thread stores each segment's rows while the reader normalizes the next
   (`Store.insert_rows`, `store/`: embedded chDB or a ClickHouse server, the tables in
   `store/migrations/`, their rows in `schema.py`), one deduplication token per segment, and
   only then releases the segment from the spool.
5. evaluate: stored calls are offered to online evaluation (`evaluation/`), which scores them
   off the ingest path and stores the scores.

Around the path: `api/` (JSON) and `ui/` (pages) read and write through `records/`;
`monitoring.py` (the collector's own counters), `completed_runs.py` (one summary row per run
once it is complete), `background.py` (their threads), `retention.py` (TTLs), `settings.py` (every
setting, checked at start-up), `service.py` and `app.py` (the process), `cli*.py` (the `assay`
command), `grafana/` (dashboards and alert rules as code).
"""
