# syntax=docker/dockerfile:1
# The xregistry service image: the locked wheels installed into a virtual environment in a build
# stage and trimmed to what runs (scripts/prune-venv), then only that environment and libpq on a
# slim runtime (no compiler, no pip, no source tree). Its weight, and what each cut saved:
# docs/deploy.md, "The image".
#
#   docker build -t xregistry --build-arg VERSION=0.1.0 --build-arg REVISION=$(git rev-parse HEAD) .
#   docker run -v $PWD/config.yaml:/etc/xregistry/config.yaml:ro -v $PWD/tls:/etc/xregistry/tls:ro \
#     -e XREGISTRY_DATABASE_URL=postgresql://xregistry:PASSWORD@db:5432/xregistry \
#     -v xregistry-data:/var/lib/xregistry --read-only -p 50051:50051 xregistry
#
# Secure by default: `serve` refuses an address off loopback without TLS and authentication, so
# the config must give `listen: 0.0.0.0:50051`, `tls:` (/etc/xregistry/tls/tls.crt, tls.key) and
# `auth:` (README, "Where it listens"); the database is PostgreSQL from $XREGISTRY_DATABASE_URL
# (empty here: the container refuses to start without it; sqlite:////var/lib/xregistry/x.db
# asks for SQLite). scripts/test-image builds this file with buildah and runs it.

# The base, pinned by digest (multi-architecture index of the tag beside it). The digest was
# found in public repositories, not checked against Docker Hub (unreachable where this was
# written): `skopeo inspect --raw docker://python:3.11.14-slim-bookworm | sha256sum` must print
# it. BASE lets scripts/test-image build from a local stand-in (Debian bookworm's own python3.11,
# slimmed as this image is).
ARG BASE=python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d

FROM ${BASE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
# binutils for strip (scripts/prune-venv): this stage only, never the runtime.
RUN apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends binutils >/dev/null
# python3, not python: the stand-in has /usr/bin/python3 only, the upstream image both.
RUN python3 -m venv /opt/venv
COPY requirements.txt /src/
# Wheels only, each checked against the lock's hashes: nothing is compiled. The download cache
# is the builder's (a cache mount), never a layer.
RUN --mount=type=cache,target=/root/.cache/pip \
    /opt/venv/bin/pip install --require-hashes --only-binary :all: --no-deps -r /src/requirements.txt
COPY pyproject.toml README.md /src/
COPY catalog /src/catalog
COPY replication /src/replication
COPY migrations /src/migrations
COPY scripts/prune-venv /src/scripts/
# The project itself, with the locked setuptools (no build isolation: nothing unpinned fetched).
# Then scripts/prune-venv trims the venv to what runs (its docstring gives each cut and why):
# the installers and the distributions nothing imports go, debug symbols are stripped, the
# dependencies are kept as bytecode only (ours keep their sources) and everything is compiled
# now: the runtime's root is read-only.
RUN /opt/venv/bin/pip install --no-cache-dir --no-deps --no-build-isolation /src \
    && /opt/venv/bin/python /src/scripts/prune-venv

FROM ${BASE}
ARG VERSION=0.0.0
ARG REVISION=unknown
ARG SOURCE=""
LABEL org.opencontainers.image.title="xregistry" \
      org.opencontainers.image.description="Supply-chain artifact catalog and replication service for OCI registries" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.version="${VERSION}"
# libpq for psycopg (pure Python: it loads the system's libpq, updated with the base's Debian
# packages rather than bundled in a wheel), installed the slim way and the apt state dropped;
# the upstream base's own pip removed (the stand-in has none): no installer in the runtime.
# A numeric user (Kubernetes' runAsNonRoot checks the number) owning only the data volume.
RUN apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libpq5 >/dev/null \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log \
       /var/cache/debconf/*-old \
       /usr/local/bin/pip /usr/local/bin/pip3* /usr/local/lib/python3.*/site-packages/pip \
       /usr/local/lib/python3.*/site-packages/pip-*.dist-info \
    && groupadd --system --gid 10001 xregistry \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/xregistry --no-create-home \
       --shell /usr/sbin/nologin xregistry \
    && mkdir -p /var/lib/xregistry /etc/xregistry/tls \
    && chown 10001:10001 /var/lib/xregistry && chmod 0750 /var/lib/xregistry
COPY --from=build /opt/venv /opt/venv
# HOME and TMPDIR on the volume: the only place the read-only root lets it write.
ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/var/lib/xregistry \
    TMPDIR=/var/lib/xregistry \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    XREGISTRY_DATABASE_URL=""
VOLUME ["/var/lib/xregistry"]
WORKDIR /var/lib/xregistry
USER 10001:10001
EXPOSE 50051 50052
# Readiness: SERVING only while the database answers and is migrated, asked on the plain-text
# health-only listener (config `health: {listen: 0.0.0.0:50052}`), which needs no CA or token.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["xregistry", "health", "--server", "localhost:50052", "--timeout", "5"]
ENTRYPOINT ["xregistry"]
CMD ["serve", "--config", "/etc/xregistry/config.yaml"]
