# The Assay collector, for docker-compose.yml (ClickHouse server storage).
FROM python:3.11-slim
WORKDIR /src
COPY pyproject.toml README.md ./
COPY instrumentation ./instrumentation
COPY evaluators ./evaluators
COPY collector ./collector
RUN pip install --no-cache-dir '.[collector]'
WORKDIR /var/lib/assay
EXPOSE 4317 4318
CMD ["assay", "collector"]
