"""The Assay collector: OTLP receivers, normalizer, store, REST API and CLI."""
