"""OTLP receivers: gRPC and HTTP, both feeding the same pipeline."""
