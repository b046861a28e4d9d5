"""The normalizer: OTLP requests in, typed rows for the store out."""
