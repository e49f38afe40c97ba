# The engine's image: one package, every process (`grievance worker`, `relay`, `projections run`, ...).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY engine engine
COPY projections projections
COPY adapters adapters
COPY schemas schemas
RUN pip install --no-cache-dir . && useradd --system --uid 10001 grievance
USER grievance
# Settings come from the environment (see compose.yaml and README.md).
ENV GRIEVANCE_LOG_FORMAT=json
CMD ["grievance", "--help"]
