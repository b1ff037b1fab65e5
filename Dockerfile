# syntax=docker/dockerfile:1
# The xregistry service image: the locked wheels installed into a virtual environment in a build
# stage and trimmed to what runs (scripts/prune-venv), then only that environment, Debian's
# python3.11 and libpq on a slim runtime (no compiler, no pip, no source tree). Its weight, and
# what each cut saved: docs/deploy.md, "The image".
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

# The base, pinned by digest (multi-architecture index of the dated tag beside it: what
# debian:bookworm-slim was on 2025-05-20, Debian 12.11). The digest was found in public
# repositories, not checked against Docker Hub (unreachable where this was written):
# `skopeo inspect --raw docker://debian:bookworm-20250520-slim | sha256sum` must print it.
# Debian's own python3.11 and libpq5, not python:3.11-slim's interpreter built from source:
# Debian's security updates reach both with the base's packages (rebuild to pick them up), and
# scripts/test-image measures the image as shipped, since its stand-in is what this base is
# (debootstrap minbase with debian:bookworm-slim's dpkg excludes). BASE lets it build from that
# stand-in.
ARG BASE=debian:bookworm-20250520-slim@sha256:90522eeb7e5923ee2b871c639059537b30521272f10ca86fdbbbb2b75a8c40cd

FROM ${BASE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
# Debian's python3.11 with venv (and ensurepip's wheels), binutils for strip
# (scripts/prune-venv): this stage only. The venv points at /usr/bin/python3.11, where the
# runtime stage installs the same interpreter.
RUN apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
       python3.11-venv binutils >/dev/null
RUN python3.11 -m venv /opt/venv
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
COPY --from=build /opt/venv /opt/venv
# The CA bundle Debian's ca-certificates made in the build stage (pip's dependency there), for
# registries' TLS: the package itself would bring the openssl command (3 MB) with it.
# SSL_CERT_FILE (below) points OpenSSL at it, as libssl3 alone has no default path to it.
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
# One layer: Debian's interpreter (python3.11-minimal and its standard library: no pip, no
# venv, no pydoc), libpq for psycopg (pure Python: it loads the system's libpq) and netbase,
# installed the slim way (the base's dpkg excludes, and ours: help()'s topics and CPython's own
# test extension modules, 1.2 MB), the downloaded packages and apt's lists dropped. Then the
# standard library's bytecode (python3.11-minimal's install script compiles its part) goes, with
# the few test packages, and only what the CLI and the service import is compiled, by running
# them once (as root; the files are 0644): the root is read-only at run time, so a module
# without bytecode would be compiled again in every process.
# A numeric user (Kubernetes' runAsNonRoot checks the number) owning only the data volume.
RUN printf 'path-exclude /usr/lib/python3.11/%s\n' 'pydoc_data/*' 'lib-dynload/_test*' \
       'lib-dynload/_ctypes_test*' 'lib-dynload/_xxtestfuzz*' 'lib-dynload/xxlimited*' \
       >/etc/dpkg/dpkg.cfg.d/xregistry \
    && apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
       python3.11-minimal libpython3.11-stdlib libpq5 netbase >/dev/null \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/* /var/log/apt /var/log/dpkg.log /var/cache/debconf/*-old \
    && find /usr/lib/python3.11 -depth \( \( -type d -a \( -name __pycache__ -o -name test \
       -o -name tests -o -name idle_test \) \) -o -name '*.pyc' \) -exec rm -rf '{}' + \
    && /opt/venv/bin/xregistry --version >/dev/null \
    && /opt/venv/bin/xregistry serve --help >/dev/null \
    && /opt/venv/bin/xregistry health --help >/dev/null \
    && /opt/venv/bin/python -c 'import importlib, pkgutil, catalog, replication; \
[importlib.import_module(m.name) for p in (catalog, replication) \
 for m in pkgutil.walk_packages(p.__path__, p.__name__ + ".")]' \
    && groupadd --system --gid 10001 xregistry \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/xregistry --no-create-home \
       --shell /usr/sbin/nologin xregistry \
    && mkdir -p /var/lib/xregistry /etc/xregistry/tls \
    && chown 10001:10001 /var/lib/xregistry && chmod 0750 /var/lib/xregistry
# HOME and TMPDIR on the volume: the only place the read-only root lets it write.
ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/var/lib/xregistry \
    LANG=C.UTF-8 \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
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
