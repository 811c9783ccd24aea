# vfbot: the Slack app and provisioning engine in one process (`vfbot serve`).
# Build: docker build -t vfbot .   Run: see docs/operations.md (Docker, compose, systemd).
#
# The base is pinned to one Python patch release on one Debian release; moving it is a reviewed
# change (docs/operations.md, "Upgrading the image"). Dependencies come only from
# requirements.lock, every file checked against its hash; `make lock` refreshes it.
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY requirements.lock ./
RUN python -m venv /opt/vfbot \
    && /opt/vfbot/bin/pip install --no-cache-dir --require-hashes -r requirements.lock
COPY pyproject.toml README.md ./
COPY bot ./bot
# Only vfbot itself here: every dependency is already installed from the lock.
RUN /opt/vfbot/bin/pip install --no-cache-dir --no-deps .

FROM ${PYTHON_IMAGE}
# MALLOC_ARENA_MAX=2: glibc's default of 8 malloc arenas per core lets the database threads
# (aiosqlite) hold twice the memory (bench/p5_memory.py, docs/benchmarks.md).
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MALLOC_ARENA_MAX=2 \
    PATH=/opt/vfbot/bin:$PATH \
    PORT=3000 \
    VF_BIND=0.0.0.0 \
    DATABASE_URL=sqlite+aiosqlite:////data/vfbot.db
COPY --from=build /opt/vfbot /opt/vfbot
# A numeric user and group (10001): Kubernetes' runAsNonRoot can verify it without /etc/passwd.
RUN groupadd --system --gid 10001 vfbot \
    && useradd --system --uid 10001 --gid 10001 --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin vfbot \
    && mkdir /data \
    && chown 10001:10001 /data
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 3000
# Liveness: /healthz on PORT (`vfbot worker` needs `--metrics-port $PORT` for this to answer).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '3000'), timeout=4)"]
# Exec form: SIGTERM reaches vfbot, which finishes work in flight within VF_SHUTDOWN_TIMEOUT.
CMD ["vfbot", "serve"]
