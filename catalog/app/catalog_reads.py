"""The catalog's read operations: the queries of catalog.store.queries, each on a session or a
connection of its own.

Apart from :class:`~catalog.app.catalog_service.CatalogService` (which inherits them and adds
the changes and indexing) so that a command that only reads runs them on a plain connection and
imports neither the ORM, the indexer nor the audit's writers.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

from catalog.oci.digest import is_digest
from catalog.oci.reference import parse_image_reference
from catalog.store import queries

# Opens what the queries run on (a sessionmaker, or an engine's ``connect``); closed after each.
Connect = Callable[[], AbstractContextManager[queries.Reads]]


class CatalogReads:
    def __init__(self, connect: Connect) -> None:
        self.reads = connect

    def list_registries(
        self, size: int = 0, after: queries.Key | None = None
    ) -> queries.Page[queries.RegistryView]:
        with self.reads() as session:
            return queries.list_registries(session, queries.page_size(size), after)

    def list_repositories(
        self, registry: str, size: int = 0, after: queries.Key | None = None
    ) -> queries.Page[queries.RepositoryView]:
        with self.reads() as session:
            return queries.list_repositories(session, registry, queries.page_size(size), after)

    def list_tags(
        self,
        registry: str,
        repository: str,
        show_gone: bool = False,
        size: int = 0,
        after: queries.Key | None = None,
    ) -> queries.Page[queries.TagView]:
        with self.reads() as session:
            return queries.list_tags(
                session, registry, repository, show_gone, queries.page_size(size), after
            )

    def list_index_errors(
        self, registry: str, size: int = 0, after: queries.Key | None = None
    ) -> queries.Page[queries.IndexErrorView]:
        with self.reads() as session:
            return queries.list_index_errors(session, registry, queries.page_size(size), after)

    def artifact(self, reference: str) -> queries.ArtifactView:
        """By digest (``sha256:…``) or by image reference, resolved through the catalog's tags."""
        with self.reads() as session:
            if is_digest(reference):
                return queries.get_artifact(session, reference)
            digest = queries.resolve_reference(session, parse_image_reference(reference, "latest"))
            return queries.get_artifact(session, digest)

    def referrers(
        self,
        digest: str,
        artifact_type: str | None = None,
        size: int = 0,
        after: queries.Key | None = None,
        budget: queries.Budget | None = None,
    ) -> queries.Page[queries.AttachmentView]:
        with self.reads() as session:
            return queries.list_referrers(
                session, digest, artifact_type, queries.page_size(size), after, budget
            )

    def find(
        self,
        purl: str | None = None,
        name: str | None = None,
        version: str | None = None,
        size: int = 0,
        after: queries.Key | None = None,
        budget: queries.Budget | None = None,
    ) -> queries.Page[queries.PackageMatch]:
        with self.reads() as session:
            return queries.search_packages(
                session,
                purl=purl,
                name=name,
                version=version,
                size=queries.page_size(size),
                after=after,
                budget=budget,
            )

    def tag_events(
        self,
        registry: str,
        repository: str,
        tag: str,
        size: int = 0,
        after: queries.Key | None = None,
    ) -> queries.Page[queries.TagEventView]:
        with self.reads() as session:
            return queries.tag_history(
                session, registry, repository, tag, queries.page_size(size), after
            )
