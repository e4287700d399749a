# syntax=docker/dockerfile:1
# Formflow image: one image for every process (serve, worker, scheduler, migrate, ...).
#   docker build -t formflow:local .
#   docker run --rm formflow:local formflow --help
# compose.yaml builds it and runs the whole production stack (PostgreSQL, Redis, MinIO).

# --- Stage 1: browser assets from their npm packages (pinned by package-lock.json) ---------
FROM node:22-slim AS assets
WORKDIR /assets
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error \
 && mkdir -p vendor \
 && cp node_modules/htmx.org/dist/htmx.min.js node_modules/sortablejs/Sortable.min.js vendor/

# --- Stage 2: the Python application -------------------------------------------------------
FROM python:3.11-slim AS app

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    FORMFLOW_VAR_DIR=/app/var \
    FORMFLOW_STORAGE_PATH=/app/var/attachments

RUN groupadd --system --gid 10001 formflow \
 && useradd --system --uid 10001 --gid formflow --home-dir /app --shell /usr/sbin/nologin formflow

# Runtime dependencies first, from the lock file, so this layer is cached across code changes.
COPY requirements.lock /tmp/requirements.lock
RUN pip install -r /tmp/requirements.lock && rm /tmp/requirements.lock

# The project itself (its dependencies are already installed from the lock: --no-deps). The
# vendored assets go into web/static/vendor before the install so the package data carries them.
COPY . /tmp/src
COPY --from=assets /assets/vendor/ /tmp/src/web/static/vendor/
RUN pip install --no-deps /tmp/src \
 && rm -rf /tmp/src \
 && mkdir -p /app/var/attachments \
 && chown -R formflow:formflow /app

WORKDIR /app
USER formflow

EXPOSE 8000

# Liveness only: the process answers HTTP. Readiness (database, broker, storage) is
# /health/ready, checked by compose.yaml. The slim image has no curl, hence urllib.
# worker and scheduler containers serve no HTTP: compose.yaml disables this check for them.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health/live' % os.environ.get('FORMFLOW_PORT', '8000'), timeout=4)"]

CMD ["formflow", "serve", "--host", "0.0.0.0"]
