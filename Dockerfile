# The xregistry service image.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY catalog ./catalog
COPY replication ./replication
RUN pip install --no-cache-dir .
USER 65532:65532
ENTRYPOINT ["xregistry"]
CMD ["--help"]
