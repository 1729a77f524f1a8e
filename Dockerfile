# The huren engine: HTTP API (8080) and MLLP listener (2575). Configured by HUREN_* variables;
# state in HUREN_DATA_DIR (SQLite by default, or MongoDB when HUREN_MONGODB_URI is set).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY engine ./engine
COPY adapters ./adapters
COPY mappings ./mappings
COPY conformance ./conformance
RUN pip install . \
    && useradd --system --create-home --home-dir /var/lib/huren huren

USER huren
ENV HUREN_DATA_DIR=/var/lib/huren \
    HUREN_HTTP_HOST=0.0.0.0 \
    HUREN_HTTP_PORT=8080 \
    HUREN_MLLP_HOST=0.0.0.0 \
    HUREN_MLLP_PORT=2575
VOLUME ["/var/lib/huren"]
EXPOSE 8080 2575

HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=6 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/fhir/metadata', timeout=3)"

CMD ["sh", "-c", "huren keys init && exec huren serve"]
