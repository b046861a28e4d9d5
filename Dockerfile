# The Assay collector, for docker-compose.yml (ClickHouse server storage); the same image writes
# the stack's Grafana files (`assay grafana files`) and sends its demo traffic.
FROM python:3.11-slim
WORKDIR /src
COPY pyproject.toml README.md ./
COPY instrumentation ./instrumentation
COPY evaluators ./evaluators
COPY collector ./collector
RUN pip install --no-cache-dir '.[collector,dashboards]'
WORKDIR /var/lib/assay
EXPOSE 4317 4318
CMD ["assay", "collector"]
