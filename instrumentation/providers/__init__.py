"""One instrumentor per LLM client library, sharing the span builder and the stream wrapper."""
