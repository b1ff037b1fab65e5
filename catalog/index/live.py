"""What the gate asks a registry when the catalog has not seen an image yet."""

from __future__ import annotations

import asyncio

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from catalog.index.single import index_digest
from catalog.oci.client import RegistryClient
from catalog.oci.errors import ManifestUnknown
from catalog.oci.open import client_for
from catalog.oci.options import RegistryOptions
from catalog.oci.reference import ImageReference
from catalog.oci.repository import RemoteRepository
from catalog.oci.secrets import Secrets
from catalog.store.models import Registry


def _settings(
    sessions: sessionmaker[Session], host: str
) -> tuple[str, bool, str | None, str | None]:
    """The registry's configured settings, or plain defaults for a stranger."""
    with sessions() as session:
        row = session.scalar(select(Registry).where(Registry.host == host))
        if row is None:
            return host, False, None, None
        return row.host, row.insecure, row.ca_file, row.credentials_ref


async def _client(
    sessions: sessionmaker[Session], secrets: Secrets, host: str, limits: RegistryOptions | None
) -> RegistryClient:
    # The lookup runs on a worker thread: the gate asks from the event loop.
    settings = await asyncio.to_thread(_settings, sessions, host)
    return client_for(*settings, secrets=secrets, limits=limits)


async def resolve_live(
    sessions: sessionmaker[Session],
    secrets: Secrets,
    reference: ImageReference,
    *,
    limits: RegistryOptions | None = None,
) -> str:
    async with await _client(sessions, secrets, reference.registry, limits) as client:
        descriptor = await client.head_manifest(reference.repository, reference.ref)
    if descriptor is None:
        raise ManifestUnknown(f"{reference}: no such manifest in the registry")
    return str(descriptor.digest)


async def index_live(
    sessions: sessionmaker[Session],
    secrets: Secrets,
    reference: ImageReference,
    digest: str,
    *,
    limits: RegistryOptions | None = None,
) -> int:
    async with await _client(sessions, secrets, reference.registry, limits) as client:
        return await index_digest(sessions, RemoteRepository(client, reference.repository), digest)
