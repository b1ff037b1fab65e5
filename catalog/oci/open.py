"""Opening a registry client from the settings the catalog stores for a registry."""

from __future__ import annotations

from catalog.oci.client import RegistryClient
from catalog.oci.options import RegistryOptions
from catalog.oci.secrets import Secrets


def client_for(
    host: str,
    insecure: bool,
    ca: str | None,
    credentials: str | None,
    *,
    secrets: Secrets,
    max_concurrency: int = 16,
    limits: RegistryOptions | None = None,
) -> RegistryClient:
    """A client for ``host`` with its stored TLS settings, the CA file and credentials being
    names resolved through this process's ``secrets``, under the process's ``limits`` (caps,
    timeouts, retries: the server's ``limits.registry``; the defaults otherwise)."""
    found, token_realms = secrets.credentials_for(credentials, host)
    options = (limits or RegistryOptions())._replace(
        insecure=insecure,
        ca_file=secrets.ca_file(ca),
        credentials=found,
        token_realms=token_realms,
        max_concurrency=max_concurrency,
    )
    return RegistryClient(host, options, secrets.credential_store())
