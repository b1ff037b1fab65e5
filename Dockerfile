# The xregistry service image: `docker build -t xregistry .`, then
# `docker run -p 50051:50051 -v $PWD/xregistry.yaml:/etc/xregistry.yaml xregistry \
#    serve --config /etc/xregistry.yaml --listen 0.0.0.0:50051`
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
CMD ["serve", "--listen", "0.0.0.0:50051"]
