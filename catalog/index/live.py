"""What the gate asks a registry when the catalog has not seen an image yet."""

from __future__ import annotations

import asyncio

from sqlalchemy.orm import Session, sessionmaker

from catalog.hostport import split_address
from catalog.index.single import index_digest
from catalog.oci.auth import network_of
from catalog.oci.client import RegistryClient
from catalog.oci.errors import ManifestUnknown, NotAsked
from catalog.oci.open import client_for
from catalog.oci.options import RegistryOptions
from catalog.oci.reference import ImageReference
from catalog.oci.repository import RemoteRepository
from catalog.oci.secrets import Secrets
from catalog.store import queries


def _settings(
    sessions: sessionmaker[Session], host: str, public_strangers: bool
) -> tuple[str, bool, str | None, str | None]:
    """The registry's configured settings, or plain defaults for a stranger (only one on a
    public network, when ``public_strangers``)."""
    with sessions() as session:
        row = queries.registry_for_host(session, host)
    if row is not None:
        return row.host, row.insecure, row.ca_file, row.credentials_ref
    if public_strangers and network_of(split_address(host)[0]) != "public":
        raise NotAsked(
            f"{host} is not a registry of the catalog (as it spells the host), and not on a"
            " public network: the server asks only the registries it stores, or public ones"
            " (add it with `xregistry registry add`)"
        )
    return host, False, None, None


async def _client(
    sessions: sessionmaker[Session],
    secrets: Secrets,
    host: str,
    limits: RegistryOptions | None,
    public_strangers: bool,
) -> RegistryClient:
    # The lookup runs on a worker thread: the gate asks from the event loop.
    settings = await asyncio.to_thread(_settings, sessions, host, public_strangers)
    return client_for(*settings, secrets=secrets, limits=limits)


async def resolve_live(
    sessions: sessionmaker[Session],
    secrets: Secrets,
    reference: ImageReference,
    *,
    limits: RegistryOptions | None = None,
    public_strangers: bool = False,
) -> str:
    """The digest ``reference`` names now. ``public_strangers``: a registry the catalog does not
    store is asked only on a public network (a server's callers choose the host: they must not
    make it probe its own network, or speak plain HTTP to this machine's ports)."""
    registry = reference.registry
    async with await _client(sessions, secrets, registry, limits, public_strangers) as client:
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
    public_strangers: bool = False,
) -> int:
    """``digest`` of ``reference``'s repository indexed (``public_strangers``: see
    :func:`resolve_live`)."""
    registry = reference.registry
    async with await _client(sessions, secrets, registry, limits, public_strangers) as client:
        return await index_digest(sessions, RemoteRepository(client, reference.repository), digest)
