# vfbot: the Slack app and provisioning engine in one process (`vfbot serve`).
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PORT=3000 \
    DATABASE_URL=sqlite+aiosqlite:////data/vfbot.db
COPY --from=build /install /usr/local
RUN useradd --system --create-home --uid 10001 vfbot && mkdir /data && chown vfbot /data
USER vfbot
WORKDIR /data
VOLUME ["/data"]
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
    CMD python -c "import os, urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ[\"PORT\"]}/healthz', timeout=4)"
# Exec form: SIGTERM reaches vfbot, which finishes work in flight and closes its connections.
CMD ["vfbot", "serve"]
