# The xregistry service image: `docker build -t xregistry .`, then
# `docker run -p 50051:50051 -v $PWD/xregistry.yaml:/etc/xregistry/xregistry.yaml:ro \
#    -v $PWD/tls:/etc/xregistry/tls:ro xregistry`
# The config decides where and how it listens; for a container that is
#   listen: 0.0.0.0:50051
#   tls: {cert_file: /etc/xregistry/tls/tls.crt, key_file: /etc/xregistry/tls/tls.key}
#   auth: {...}                               # tokens, OIDC issuers or client certificates
# `serve` refuses a non-loopback address without TLS and authentication (README, "Where it
# listens"), so the image never offers an open API by default; without a config it does not start.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY catalog ./catalog
COPY replication ./replication
COPY migrations ./migrations
RUN pip install --no-cache-dir . && useradd --system --uid 65532 xregistry \
    && mkdir -p /var/lib/xregistry && chown 65532 /var/lib/xregistry
USER 65532:65532
WORKDIR /var/lib/xregistry
EXPOSE 50051
ENTRYPOINT ["xregistry"]
CMD ["serve", "--config", "/etc/xregistry/xregistry.yaml"]
