"""Opening a registry client from the settings the catalog stores for a registry."""

from __future__ import annotations

from pathlib import Path

from catalog.oci.client import RegistryClient
from catalog.oci.credentials import CredentialStore, resolve_credentials_ref
from catalog.oci.options import RegistryOptions


def client_for(
    host: str,
    insecure: bool,
    ca_file: str | None,
    credentials_ref: str | None,
    max_concurrency: int = 16,
) -> RegistryClient:
    """A client for ``host`` with its stored TLS settings and credentials reference
    (see :func:`~catalog.oci.credentials.resolve_credentials_ref`)."""
    store = CredentialStore()
    options = RegistryOptions(
        insecure=insecure,
        ca_file=Path(ca_file) if ca_file else None,
        credentials=resolve_credentials_ref(credentials_ref, store, host),
        max_concurrency=max_concurrency,
    )
    return RegistryClient(host, options, store)
