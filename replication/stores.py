"""Where a replication copies from and to: a registry, or OCI image layouts on disk.

A run sees either as a set of named repositories. A registry's are its ``_catalog`` (or the
names a rule gives). ``oci:PATH`` is a directory of image layouts, one per repository at
``PATH/<repository>`` (what ``--to oci:PATH`` writes, layouts created as needed); when PATH is
itself a layout, it is the one repository, named after its last path component, as
``skopeo sync`` names a source directory. So a registry copied to ``oci:DIR`` and ``oci:DIR``
copied to a registry give back the same repositories, tags, digests and referrers.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

from catalog.errors import InvalidArgument
from catalog.oci.client import RegistryClient
from catalog.oci.errors import LayoutError
from catalog.oci.reference import LAYOUT_PREFIX
from catalog.oci.repository import RemoteRepository, Repository

LAYOUT_MARKER = "oci-layout"
# A source tree is walked this deep and this wide at most (the walk is the layouts' _catalog).
MAX_DEPTH = 8
MAX_DIRECTORIES = 10_000
# Layouts are local files: blobs up to this size are read whole before they are written.
LAYOUT_BUFFER = 16 * 1024 * 1024


class Store(Protocol):
    """The repositories of one side of a run."""

    @property
    def name(self) -> str: ...

    @property
    def buffer_limit(self) -> int:
        """Blobs up to this size are copied in one piece (larger ones stream)."""
        ...

    def repositories(self) -> AsyncIterator[str]: ...

    def repository(self, name: str) -> Repository: ...

    def tags(self, name: str) -> AsyncIterator[str]: ...


def is_layout(location: str) -> bool:
    return location.startswith(LAYOUT_PREFIX)


class RegistryStore:
    """A registry, through its client."""

    def __init__(self, client: RegistryClient) -> None:
        self.client = client

    @property
    def name(self) -> str:
        return self.client.host

    @property
    def buffer_limit(self) -> int:
        return self.client.options.chunk_size  # larger blobs go up in chunks anyway

    def repositories(self) -> AsyncIterator[str]:
        return self.client.catalog()

    def repository(self, name: str) -> Repository:
        return RemoteRepository(self.client, name)

    def tags(self, name: str) -> AsyncIterator[str]:
        return self.client.tags(name)


class LayoutStore:
    """``oci:PATH``: image layouts in a directory (see the module)."""

    def __init__(self, location: str, *, create: bool = False, must_exist: bool = True) -> None:
        text = location.removeprefix(LAYOUT_PREFIX)
        if not text:
            raise InvalidArgument(f"{location!r}: give oci:PATH, a directory of image layouts")
        self.location = location
        self.root = Path(text).resolve()
        self.create = create
        self.single = (self.root / LAYOUT_MARKER).is_file()
        self._opened: dict[str, Repository] = {}
        if must_exist and not create and not self.root.is_dir():
            raise LayoutError(f"{text}: no such directory")

    @property
    def name(self) -> str:
        return self.location

    @property
    def buffer_limit(self) -> int:
        return LAYOUT_BUFFER

    async def repositories(self) -> AsyncIterator[str]:
        if self.single:
            yield self.root.name
            return
        for name in await asyncio.to_thread(self._walk):
            yield name

    def _walk(self) -> list[str]:
        """Every layout below the root (a layout's own folders are not searched)."""
        found: list[str] = []
        visited = 0
        for top, dirs, files in os.walk(self.root, followlinks=False):
            visited += 1
            if visited > MAX_DIRECTORIES:
                raise LayoutError(
                    f"{self.location}: more than {MAX_DIRECTORIES} folders searched for layouts"
                )
            here = Path(top)
            if LAYOUT_MARKER in files and here != self.root:
                found.append(here.relative_to(self.root).as_posix())
                dirs.clear()
                continue
            if len(here.relative_to(self.root).parts) >= MAX_DEPTH:
                dirs.clear()
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        return sorted(found)

    def repository(self, name: str) -> Repository:
        """The layout of ``name``, opened (and, for a destination, created) once."""
        opened = self._opened.get(name)
        if opened is None:
            opened = self._opened[name] = self._open(name)
        return opened

    def _open(self, name: str) -> Repository:
        # Imported here: a run between registries never loads the layout code.
        from catalog.oci.layout import LayoutRepository

        if self.single:
            if name != self.root.name:
                raise LayoutError(f"{self.location} is one layout, {self.root.name!r}")
            return LayoutRepository(self.root)
        path = self.root.joinpath(*name.split("/"))
        # Names are checked by the reference grammar ("..", "/" and "." are not components),
        # and nothing may resolve outside the root through a symbolic link either.
        if not path.resolve().is_relative_to(self.root):
            raise LayoutError(f"{self.location}: {name} leaves the directory")
        return LayoutRepository(path, create=self.create)

    async def tags(self, name: str) -> AsyncIterator[str]:
        async for tag in self.repository(name).tags():
            yield tag
