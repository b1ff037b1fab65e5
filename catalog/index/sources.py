"""What the crawler reads from: a registry's repositories, or an image layout as one repository."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

from catalog.oci.client import RegistryClient
from catalog.oci.layout import LayoutRepository
from catalog.oci.repository import RemoteRepository, Repository


class RepositoryOpener(Protocol):
    can_list: bool  # False when repositories come only from configuration

    def __call__(self, name: str) -> Repository: ...

    def list_repositories(self) -> AsyncIterator[str]: ...

    def may_have_referrers_api(self) -> bool: ...


class RegistrySource:
    can_list = True

    def __init__(self, client: RegistryClient) -> None:
        self.client = client

    def __call__(self, name: str) -> Repository:
        return RemoteRepository(self.client, name)

    def list_repositories(self) -> AsyncIterator[str]:
        return self.client.catalog()

    def may_have_referrers_api(self) -> bool:
        return self.client.has_referrers_api is not False


class LayoutSource:
    """An ``oci:`` layout directory, indexed as a single repository named ``name``."""

    can_list = True

    def __init__(self, path: Path, name: str = "layout") -> None:
        self.layout = LayoutRepository(path)
        self.name = name

    def __call__(self, name: str) -> Repository:
        return self.layout

    async def list_repositories(self) -> AsyncIterator[str]:
        yield self.name

    def may_have_referrers_api(self) -> bool:
        return False
