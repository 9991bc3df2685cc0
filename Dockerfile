# The export bot and the exporter in one image. Also the image the `docker` sandbox backend runs.
#   docker build -t hub-exporter-bot .
#   docker run -p 7860:7860 --stop-timeout 30 -e EXPORT_BOT_WEBHOOK_SECRET=... -e HF_TOKEN=... \
#       -e EXPORT_BOT_OPERATOR_TOKEN=... hub-exporter-bot
# It listens on 0.0.0.0 (the container's port); without EXPORT_BOT_OPERATOR_TOKEN the operators' pages
# answer nobody from outside (only direct loopback clients). /healthz stays open.
#
# Without a registry (no Docker Hub, no PyTorch index): scripts/build-image.sh builds a Debian base
# with debootstrap (scripts/build-base-image.sh) and passes BASE_IMAGE, TORCH_INDEX_URL and pip's
# settings as build arguments; docs/sandbox.md.
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

# bubblewrap: the default sandbox; util-linux: prlimit (memory and file-size limits).
RUN apt-get update \
    && apt-get install -y --no-install-recommends bubblewrap util-linux \
    && rm -rf /var/lib/apt/lists/*

ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1
# Where torch's CPU wheel comes from; pip's own settings (PIP_FIND_LINKS, PIP_CERT...) only for the build.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG PIP_FIND_LINKS
ARG PIP_CERT
RUN pip install torch==2.13.0 --index-url "${TORCH_INDEX_URL}"

WORKDIR /app
COPY pyproject.toml README.md ./
COPY exporter ./exporter
COPY bot ./bot
RUN pip install ".[bot]"

# Non-root, uid 1000 (what Hugging Face Docker Spaces expect); state lives in /data.
RUN useradd --create-home --uid 1000 bot && mkdir -p /data && chown bot:bot /data
USER bot
WORKDIR /data
ENV EXPORT_BOT_STORE_URL=sqlite:////data/export-bot.sqlite3 \
    EXPORT_BOT_WORK_DIR=/data/work \
    HF_HOME=/data/hf

EXPOSE 7860
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:7860/healthz')"
CMD ["export-bot", "serve", "--host", "0.0.0.0", "--port", "7860", "--workers", "1"]
