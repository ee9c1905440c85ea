# One image for the four services; the command picks the service (default: intake):
#   python -m services.intake | services.assignment | services.escalation | services.notify
# Build: docker build -t gridline .

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
# Same uv as the dev group in pyproject.toml and ./dev, so the lock is read the same way.
ARG UV_VERSION=0.13.8

FROM ghcr.io/astral-sh/uv:${UV_VERSION} AS uv

FROM ${PYTHON_IMAGE} AS build
COPY --from=uv /uv /bin/uv
# Use the image's Python (never download one), compile bytecode now because the runtime
# filesystem is read-only, and copy files out of the cache mount instead of hard-linking.
ENV UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy
WORKDIR /app

# Dependencies alone first: this layer is reused until pyproject.toml or uv.lock change.
RUN --mount=type=cache,target=/root/.cache/uv \
    --mount=type=bind,source=pyproject.toml,target=pyproject.toml \
    --mount=type=bind,source=uv.lock,target=uv.lock \
    uv sync --frozen --no-dev --no-install-project

# Then the project itself, installed as a wheel (not editable) so the runtime needs no sources.
COPY pyproject.toml uv.lock README.md ./
COPY gridline ./gridline
COPY gridline_cli ./gridline_cli
COPY services ./services
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable


FROM ${PYTHON_IMAGE} AS runtime
# A fixed numeric uid/gid so Kubernetes' runAsNonRoot can verify it; /data is the only
# directory the services write (SQLite fallback, notify's inbox).
RUN groupadd --system --gid 10001 gridline \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin gridline \
    && mkdir -p /data \
    && chown 10001:10001 /data

# Owned by root: the app user can run the code but not change it. The wheel brings its packages'
# data files along: the shipped policies are read from site-packages, e.g. the deadlines at
# /app/.venv/lib/python3.11/site-packages/services/escalation/deadlines.yaml, where
# GRIDLINE_ESCALATION_DEADLINES_FILE points in docker-compose.yml and deploy/k8s.
COPY --from=build /app/.venv /app/.venv

# Every service serves its staff routes, probes and metrics on a listener apart from its public
# one (docs/security.md, "Two surfaces").
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    GRIDLINE_HOST=0.0.0.0 \
    GRIDLINE_DATA_DIR=/data \
    GRIDLINE_INTAKE_STAFF_HTTP_PORT=9001 \
    GRIDLINE_ASSIGNMENT_STAFF_HTTP_PORT=9002 \
    GRIDLINE_ESCALATION_STAFF_HTTP_PORT=9003 \
    GRIDLINE_NOTIFY_STAFF_HTTP_PORT=9004
WORKDIR /app
USER 10001:10001
# Public: intake, escalation (HTTP). Staff: intake, assignment, escalation, notify (HTTP).
# Directory, Tasks and Notify (gRPC).
EXPOSE 8001 8003 9001 9002 9003 9004 50051 50052 50053

CMD ["python", "-m", "services.intake"]
