# eil-pipelines in a container: the scheduler (default) or `serve`, as a non-root user.
#
#   docker build -t eil-pipelines .
#   docker build -t eil-pipelines --build-arg EXTRAS=exports,postgres .
#
# The project (pipelines/, sql/, templates/, data/, eil.toml) is mounted read-only
# at /srv/eil; reports/ is a volume. See docs/deploy.md and compose.yaml.
FROM python:3.12-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Optional extras, comma-separated: pdf, parquet, xlsx, exports, postgres, mysql, sqlalchemy.
ARG EXTRAS=""

# A fixed uid, so a bind-mounted reports folder can be given to it on the host.
RUN groupadd --system --gid 10001 eil \
    && useradd --system --uid 10001 --gid eil --home-dir /srv/eil --shell /usr/sbin/nologin eil \
    && mkdir -p /srv/eil/reports \
    && chown eil:eil /srv/eil/reports

WORKDIR /opt/eil-pipelines
COPY pyproject.toml README.md ./
COPY eil_pipelines ./eil_pipelines
RUN if [ -n "$EXTRAS" ]; then pip install --no-cache-dir "./[$EXTRAS]"; \
    else pip install --no-cache-dir ./; fi \
    && eil-run --version

COPY --chmod=755 deploy/entrypoint.sh /usr/local/bin/eil-entrypoint

USER 10001:10001
WORKDIR /srv/eil
VOLUME ["/srv/eil/reports"]
EXPOSE 8000

# Unhealthy when the scheduler's heartbeat in the ledger is older than --max-age,
# or a pipeline keeps failing (eil-run status; docs/deploy.md).
HEALTHCHECK --interval=60s --timeout=15s --start-period=60s --retries=3 \
    CMD ["eil-entrypoint", "status", "--max-age", "120s"]

ENTRYPOINT ["eil-entrypoint"]
CMD ["scheduler"]
