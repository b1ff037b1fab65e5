"""``xregistry.v1.CatalogService``: validate, call :class:`CatalogService`, translate.

Domain errors are mapped to status codes once, by the server's interceptor. Every call into
the store runs on a worker thread (``asyncio.to_thread``): a slow query or a database busy with
an index run must not hold the event loop every other call shares.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import grpc

from catalog.api import convert, names
from catalog.api.fitting import CUT_METADATA, cut_note, cut_to_fit
from catalog.api.paging import PageTokens, Weigher, page_size
from catalog.api.v1 import catalog_pb2 as pb
from catalog.api.v1 import catalog_pb2_grpc
from catalog.app.catalog_service import CatalogService
from catalog.errors import InvalidArgument
from catalog.index.progress import IndexStats
from catalog.store.registries import RegistrySpec

Context = grpc.aio.ServicerContext[Any, Any]
_PROGRESS_EVERY = 1.0  # seconds between progress messages of IndexRegistry
# An index error's reason is cut at 4,000 characters (catalog.index.crawler), up to 16 KB in
# UTF-8 from a hostile registry: 200 of them stay under the server's 4 MiB response limit.
INDEX_ERRORS_PAGE_MAX = 200


class CatalogServicer(catalog_pb2_grpc.CatalogServiceServicer):
    def __init__(self, catalog: CatalogService, tokens: PageTokens) -> None:
        self.catalog = catalog
        self.tokens = tokens

    async def CreateRegistry(
        self, request: pb.CreateRegistryRequest, context: Context
    ) -> pb.CreateRegistryResponse:
        # Every field is checked before anything is stored: the host's grammar and length, and
        # credentials, CA file and layout root as names of the server's own secrets.
        r = request.registry
        if not r.host:
            raise InvalidArgument("registry.host is required")
        view = await asyncio.to_thread(
            self.catalog.add_registry,
            RegistrySpec(
                name=names.validate_registry_id(request.registry_id),
                host=r.host,
                insecure=r.insecure,
                ca_file=r.ca_file or None,
                credentials_ref=r.credentials_ref or None,
                repositories=tuple(r.repositories),
                index_schedule=r.index_schedule or None,
            ),
        )
        return pb.CreateRegistryResponse(registry=convert.registry(view))

    async def GetRegistry(
        self, request: pb.GetRegistryRequest, context: Context
    ) -> pb.GetRegistryResponse:
        name = names.parse_registry_name(request.name)
        view = await asyncio.to_thread(self.catalog.get_registry, name)
        return pb.GetRegistryResponse(registry=convert.registry(view))

    async def ListRegistries(
        self, request: pb.ListRegistriesRequest, context: Context
    ) -> pb.ListRegistriesResponse:
        size, after = request.page_size, self.tokens.after(request, str, int)
        page = await asyncio.to_thread(self.catalog.list_registries, size, after)
        return pb.ListRegistriesResponse(
            registries=[convert.registry(v) for v in page.items],
            next_page_token=self.tokens.next(request, page.next_after),
        )

    async def DeleteRegistry(
        self, request: pb.DeleteRegistryRequest, context: Context
    ) -> pb.DeleteRegistryResponse:
        name = names.parse_registry_name(request.name)
        await asyncio.to_thread(self.catalog.remove_registry, name)
        return pb.DeleteRegistryResponse()

    async def IndexRegistry(
        self, request: pb.IndexRegistryRequest, context: Context
    ) -> AsyncIterator[pb.IndexRegistryResponse]:
        name = names.parse_registry_name(request.name)
        started = datetime.now(UTC)
        latest: list[IndexStats] = []
        # The run is a task of its own: it finishes even if the caller goes away.
        run = asyncio.ensure_future(self.catalog.index(name, latest.append))
        while not run.done():
            await asyncio.wait([run], timeout=_PROGRESS_EVERY)
            if not run.done():  # also before the first count: the client's idle deadline
                now = latest[-1] if latest else IndexStats()
                yield pb.IndexRegistryResponse(progress=convert.progress(now, started, False))
        stats = run.result()
        yield pb.IndexRegistryResponse(progress=convert.progress(stats, started, True))

    async def ListIndexErrors(
        self, request: pb.ListIndexErrorsRequest, context: Context
    ) -> pb.ListIndexErrorsResponse:
        registry = names.parse_registry_name(request.parent)
        page = await asyncio.to_thread(
            self.catalog.list_index_errors,
            registry,
            page_size(request.page_size, maximum=INDEX_ERRORS_PAGE_MAX),
            self.tokens.after(request, int),
        )
        return pb.ListIndexErrorsResponse(
            index_errors=[convert.index_error(registry, e) for e in page.items],
            next_page_token=self.tokens.next(request, page.next_after),
        )

    async def ListRepositories(
        self, request: pb.ListRepositoriesRequest, context: Context
    ) -> pb.ListRepositoriesResponse:
        registry = names.parse_registry_name(request.parent)
        page = await asyncio.to_thread(
            self.catalog.list_repositories,
            registry,
            request.page_size,
            self.tokens.after(request, str, int),
        )
        return pb.ListRepositoriesResponse(
            repositories=[convert.repository(registry, r) for r in page.items],
            next_page_token=self.tokens.next(request, page.next_after),
        )

    async def ListTags(self, request: pb.ListTagsRequest, context: Context) -> pb.ListTagsResponse:
        registry, path = names.parse_repository_name(request.parent)
        page = await asyncio.to_thread(
            self.catalog.list_tags,
            registry,
            path,
            request.show_gone,
            request.page_size,
            self.tokens.after(request, str, int),
        )
        return pb.ListTagsResponse(
            tags=[convert.tag(registry, path, t) for t in page.items],
            next_page_token=self.tokens.next(request, page.next_after),
        )

    async def ListTagEvents(
        self, request: pb.ListTagEventsRequest, context: Context
    ) -> pb.ListTagEventsResponse:
        registry, path, tag = names.parse_tag_name(request.parent)
        page = await asyncio.to_thread(
            self.catalog.tag_events,
            registry,
            path,
            tag,
            request.page_size,
            self.tokens.after(request, int),
        )
        return pb.ListTagEventsResponse(
            tag_events=[
                pb.TagEvent(
                    old_digest=e.old_digest or "",
                    new_digest=e.new_digest or "",
                    observe_time=convert.timestamp(e.observed_at),
                )
                for e in page.items
            ],
            next_page_token=self.tokens.next(request, page.next_after),
        )

    async def GetArtifact(
        self, request: pb.GetArtifactRequest, context: Context
    ) -> pb.GetArtifactResponse:
        name = names.parse_artifact_name(request.name)
        return pb.GetArtifactResponse(artifact=await self._artifact(name, context))

    async def ResolveArtifact(
        self, request: pb.ResolveArtifactRequest, context: Context
    ) -> pb.ResolveArtifactResponse:
        if not request.reference:
            raise InvalidArgument("reference is required")
        return pb.ResolveArtifactResponse(artifact=await self._artifact(request.reference, context))

    async def _artifact(self, reference: str, context: Context) -> pb.Artifact:
        """The artifact, cut to fit an answer when a registry attached more than one can carry
        (converting and measuring thousands of items is work for a thread too)."""

        def build() -> tuple[pb.Artifact, list[str]]:
            artifact = convert.artifact(self.catalog.artifact(reference))
            return artifact, cut_to_fit(artifact)

        artifact, cuts = await asyncio.to_thread(build)
        _say_cut(context, cuts)
        return artifact

    async def ListReferrers(
        self, request: pb.ListReferrersRequest, context: Context
    ) -> pb.ListReferrersResponse:
        parent = names.parse_artifact_name(request.parent)
        after = self.tokens.after(request, str, int)

        def referrers() -> pb.ListReferrersResponse:
            # On a thread: up to 1,000 attachments converted, and copied into the answer.
            weigher = Weigher(convert.attachment)
            page = self.catalog.referrers(
                parent,
                request.artifact_type or None,
                request.page_size,
                after,
                weigher.budget,
            )
            return pb.ListReferrersResponse(
                referrers=weigher.messages(page.items),
                next_page_token=self.tokens.next(request, page.next_after),
            )

        return await asyncio.to_thread(referrers)

    async def SearchArtifactsByPackage(
        self, request: pb.SearchArtifactsByPackageRequest, context: Context
    ) -> pb.SearchArtifactsByPackageResponse:
        after = self.tokens.after(request, str, int)

        def search() -> tuple[pb.SearchArtifactsByPackageResponse, list[str]]:
            weigher = Weigher(convert.package_match)
            page = self.catalog.find(
                purl=request.purl or None,
                name=request.package_name or None,
                version=request.package_version or None,
                size=request.page_size,
                after=after,
                budget=weigher.budget,
            )
            matches = weigher.messages(page.items)
            # Only a match alone on its page can be over the budget: it is cut, not refused.
            cuts = [f"matches[0].{cut}" for cut in cut_to_fit(matches[0])] if matches else []
            answer = pb.SearchArtifactsByPackageResponse(
                matches=matches, next_page_token=self.tokens.next(request, page.next_after)
            )
            return answer, cuts

        answer, cuts = await asyncio.to_thread(search)
        _say_cut(context, cuts)
        return answer


def _say_cut(context: Context, cuts: list[str]) -> None:
    """Tell the caller, in trailing metadata, what an answer too large to send lost."""
    if cuts:
        context.set_trailing_metadata(((CUT_METADATA, cut_note(cuts)),))
