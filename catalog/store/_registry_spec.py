"""What a user says about a registry: loaded by catalog.store.views on first use (see there)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RegistrySpec:
    """What a user says about a registry (config file, CLI, API)."""

    name: str
    host: str
    insecure: bool = False
    ca_file: str | None = None  # the name of a CA file in the process's secrets
    credentials_ref: str | None = None  # the name of a credential in the process's secrets
    repositories: tuple[str, ...] = ()  # catalog.oci.globs; empty means every repository
    index_schedule: str | None = None
