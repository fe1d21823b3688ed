# The pgcontext CLI on CPU. Used by docker-compose.yml's worker service.
FROM python:3.11-slim

ENV PIP_NO_CACHE_DIR=1 \
    PYTHONUNBUFFERED=1

WORKDIR /app

# torch first, from the CPU index: PyPI's default wheel pulls in gigabytes of CUDA libraries.
# Its own layer, so code changes do not reinstall it.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu

# Only what the wheel needs (no .venv or caches from the host).
COPY pyproject.toml README.md ./
COPY src ./src
COPY sql ./sql
COPY migrations ./migrations
RUN pip install .

ENTRYPOINT ["pgcontext"]
CMD ["--help"]
