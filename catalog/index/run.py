"""Index a configured registry: open a client from its stored settings and crawl it."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import NamedTuple

from sqlalchemy.orm import Session, sessionmaker

from catalog.index.crawler import Crawler
from catalog.index.progress import IndexStats, ProgressCallback
from catalog.index.sources import LayoutSource, RegistrySource
from catalog.oci.errors import RegistryUnavailable
from catalog.oci.open import client_for
from catalog.oci.options import RegistryOptions
from catalog.oci.secrets import Secrets
from catalog.store.registries import get_registry

# However well each request is bounded, a registry answering just fast enough everywhere could
# hold a run open for days: past this, the run stops and is recorded as failed, saying why.
INDEX_DEADLINE = 6 * 3600.0


async def index_registry(
    sessions: sessionmaker[Session],
    name: str,
    secrets: Secrets,
    on_progress: ProgressCallback | None = None,
    concurrency: int = 8,
    deadline: float | None = None,
    limits: RegistryOptions | None = None,
    repositories: Sequence[str] | None = None,
) -> IndexStats:
    """Crawl registry ``name`` (only ``repositories`` when given) with a client under
    ``limits`` (always over the standard library's transport, whatever ``limits`` names); a
    :class:`RegistryUnavailable` once ``deadline`` seconds (``INDEX_DEADLINE`` by default) have
    passed."""
    settings = await asyncio.to_thread(_settings, sessions, name)
    deadline = INDEX_DEADLINE if deadline is None else deadline
    limit = asyncio.timeout(deadline)
    try:
        async with limit:
            if settings.host.startswith("oci:"):
                layout = LayoutSource(secrets.layout(settings.host))
                crawler = Crawler(
                    sessions,
                    name,
                    layout,
                    registry_id=settings.id,
                    patterns=settings.patterns,
                    concurrency=1,
                    on_progress=on_progress,
                    only=repositories,
                )
                return await crawler.run()
            opened = client_for(
                settings.host,
                settings.insecure,
                settings.ca_file,
                settings.credentials,
                secrets=secrets,
                # The standard library's transport: a crawl is thousands of small requests,
                # each costing the event loop less CPU there than through aiohttp (same bounds).
                limits=(limits or RegistryOptions())._replace(transport="stdlib"),
            )
            async with opened as client:
                source = RegistrySource(client)
                crawler = Crawler(
                    sessions,
                    name,
                    source,
                    registry_id=settings.id,
                    patterns=settings.patterns,
                    concurrency=concurrency,
                    on_progress=on_progress,
                    only=repositories,
                )
                return await crawler.run()
    except TimeoutError as exc:
        if not limit.expired():
            raise
        raise RegistryUnavailable(
            f"{settings.host}: the index run of {name!r} was stopped at its deadline of"
            f" {deadline:g} s"
        ) from exc


class _Settings(NamedTuple):
    id: int
    host: str
    insecure: bool
    ca_file: str | None
    credentials: str | None
    patterns: list[str]  # the repository filter


def _settings(sessions: sessionmaker[Session], name: str) -> _Settings:
    """The registry's row as a run needs it, read once (on a worker thread): its host, TLS and
    credential settings for the client, its id and repository filter for the crawl."""
    with sessions() as session:
        row = get_registry(session, name)
        return _Settings(
            row.id,
            row.host,
            row.insecure,
            row.ca_file,
            row.credentials_ref,
            list(row.repositories_filter),
        )
