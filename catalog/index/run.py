"""Index a configured registry: open a client from its stored settings and crawl it."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from catalog.index.crawler import Crawler
from catalog.index.progress import IndexStats, ProgressCallback
from catalog.index.sources import LayoutSource, RegistrySource
from catalog.oci.open import client_for
from catalog.oci.secrets import Secrets
from catalog.store.registries import get_registry


async def index_registry(
    sessions: sessionmaker[Session],
    name: str,
    secrets: Secrets,
    on_progress: ProgressCallback | None = None,
    concurrency: int = 8,
) -> IndexStats:
    with sessions() as session:
        row = get_registry(session, name)
        host, insecure, ca_file, credentials = (
            row.host,
            row.insecure,
            row.ca_file,
            row.credentials_ref,
        )
    if host.startswith("oci:"):
        layout = LayoutSource(secrets.layout(host))
        crawler = Crawler(sessions, name, layout, concurrency=1, on_progress=on_progress)
        return await crawler.run()
    async with client_for(host, insecure, ca_file, credentials, secrets=secrets) as client:
        crawler = Crawler(
            sessions, name, RegistrySource(client), concurrency=concurrency, on_progress=on_progress
        )
        return await crawler.run()
