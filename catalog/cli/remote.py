"""The catalog behind a running ``xregistry serve``: the CLI's ``--server`` backend.

It answers with the same records as :class:`catalog.app.catalog_service.CatalogService`, so
every command prints the same way whichever backend it talks to.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from catalog.api import convert, enums, names
from catalog.api.v1 import catalog_pb2 as pb
from catalog.api.v1 import catalog_pb2_grpc
from catalog.cli.call_errors import UNREACHED, call_error
from catalog.cli.channel import ClientSecurity, open_aio_channel, open_channel
from catalog.cli.errors import ServerUnreachable
from catalog.cli.pages import TokensByKey
from catalog.heartbeats import CLIENT_IDLE
from catalog.index.progress import IndexStats, ProgressCallback
from catalog.oci.digest import is_digest
from catalog.store import views

T = TypeVar("T")
_TIMEOUT = 60.0
IDLE = CLIENT_IDLE  # seconds a stream may stay silent: four of the server's heartbeats
# How long the health probe that tells "unreachable" from "a registry behind it is down" waits.
_PROBE_TIMEOUT = 5.0


def _answers(channel: grpc.Channel) -> bool:
    """Whether a server answers on ``channel``: health is open to every caller, so any answer
    but UNAVAILABLE or a timeout (even UNIMPLEMENTED or UNAUTHENTICATED) says one is there."""
    health: Any = health_pb2_grpc.HealthStub(channel)  # its type stubs lack the methods
    try:
        health.Check(health_pb2.HealthCheckRequest(), timeout=_PROBE_TIMEOUT)
    except grpc.RpcError as exc:
        return exc.code() not in UNREACHED
    return True


async def _answers_aio(channel: grpc.aio.Channel) -> bool:
    health: Any = health_pb2_grpc.HealthStub(channel)
    try:
        await health.Check(health_pb2.HealthCheckRequest(), timeout=_PROBE_TIMEOUT)
    except grpc.RpcError as exc:
        return exc.code() not in UNREACHED
    return True


class Connection:
    """A server's channel; its calls fail with the CLI's errors, as the database's would."""

    def __init__(self, server: str) -> None:
        self.server = server
        self.security = ClientSecurity.from_cli()  # read once: the token file, the TLS options
        self.channel = open_channel(server, self.security)  # see catalog/cli/channel.py

    def call(self, method: Callable[..., T], request: Any) -> T:
        try:
            return method(request, timeout=_TIMEOUT)
        except grpc.RpcError as exc:
            raise self._error(exc) from None

    def stream(self, method: Callable[..., Iterable[T]], request: Any) -> Iterator[T]:
        """The messages of a server stream: no deadline for the whole (the server ends it), but
        one of :data:`IDLE` seconds between two messages (the server sends one at least every
        :data:`catalog.heartbeats.HEARTBEAT` seconds while it works)."""
        call: Any = method(request)
        silent, ended = threading.Event(), threading.Event()
        # Since when the stream waits for the server; None while the caller holds a message
        # (its own time is not the server's silence). One watcher for the whole stream: a
        # timer per message started a thread per message.
        waiting: list[float | None] = [time.monotonic()]

        def watch() -> None:
            while True:
                since = waiting[0]
                left = IDLE if since is None else since + IDLE - time.monotonic()
                if left <= 0:
                    silent.set()
                    call.cancel()
                    return
                if ended.wait(left):
                    return

        threading.Thread(target=watch, name="xregistry-stream-idle", daemon=True).start()
        try:
            for message in call:
                waiting[0] = None
                yield message
                waiting[0] = time.monotonic()
        except grpc.RpcError as exc:
            if silent.is_set():
                raise self._silent() from None
            raise self._error(exc) from None
        finally:
            ended.set()

    def _silent(self) -> ServerUnreachable:
        return ServerUnreachable(
            f"the xregistry server at {self.server} sent nothing for {IDLE:.0f} s; giving up"
        )

    async def idle_bounded(self, messages: AsyncIterable[T]) -> AsyncIterator[T]:
        """:meth:`stream`'s deadline between messages, for a stream of :meth:`following`."""
        iterator = aiter(messages)
        while True:
            # Not asyncio.wait_for: Python 3.11's drops a cancellation (Ctrl-C) that arrives
            # as the message does.
            try:
                async with asyncio.timeout(IDLE):
                    message = await anext(iterator)
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise self._silent() from None
            yield message

    def _error(self, exc: grpc.RpcError) -> Exception:
        answers = exc.code() not in UNREACHED or _answers(self.channel)
        return call_error(self.server, exc, answers)

    @asynccontextmanager
    async def following(self) -> AsyncIterator[grpc.aio.Channel]:
        """An asyncio channel for a stream followed while the command does other things."""
        async with open_aio_channel(self.server, self.security) as channel:
            try:
                yield channel
            except grpc.RpcError as exc:
                answers = exc.code() not in UNREACHED or await _answers_aio(channel)
                raise call_error(self.server, exc, answers) from None


def _locations(items: Any) -> list[views.LocationView]:
    return [
        views.LocationView(
            registry=names.parse_registry_name(loc.registry),
            repository=names.parse_repository_name(loc.repository)[1],
            tags=list(loc.tags),
            first_seen=convert.datetime_of(loc.first_seen_time),
            last_seen=convert.datetime_of(loc.last_seen_time),
            gone=loc.gone,
        )
        for loc in items
    ]


def _artifact(a: pb.Artifact) -> views.ArtifactView:
    def platform(digest: str, p: pb.Platform) -> views.PlatformView:
        return views.PlatformView(digest, p.os or None, p.architecture or None, p.variant or None)

    return views.ArtifactView(
        digest=a.digest,
        media_type=a.media_type,
        artifact_type=a.artifact_type or None,
        size=a.size,
        platform=platform(a.digest, a.platform) if a.HasField("platform") else None,
        children=[platform(c.digest, c.platform) for c in a.platform_manifests],
        locations=_locations(a.locations),
        attachments=[
            views.AttachmentView(
                x.digest,
                x.subject_digest,
                enums.ATTACHMENT_KIND.domain(x.kind) or "other",
                enums.ATTACHMENT_SCHEME.domain(x.scheme) or "unknown",
                x.artifact_type or None,
            )
            for x in a.attachments
        ],
        signatures=[
            views.SignatureView(
                s.attachment_digest,
                s.format,
                s.identity or None,
                s.issuer or None,
                dict(s.extensions),
                s.key_id or None,
                s.tlog_entry.log_index if s.HasField("tlog_entry") else None,
                int(s.tlog_entry.integrated_time.seconds) if s.HasField("tlog_entry") else None,
                list(s.signed_digests),
            )
            for s in a.signatures
        ],
        attestations=[
            views.AttestationView(
                t.attachment_digest,
                t.predicate_type,
                views.ProvenanceView(
                    t.provenance.builder_id or None,
                    t.provenance.build_type or None,
                    t.provenance.source_uri or None,
                    t.provenance.source_digest or None,
                    t.provenance.source_ref or None,
                    t.provenance.entry_point or None,
                )
                if t.HasField("provenance")
                else None,
            )
            for t in a.attestations
        ],
        sboms=[
            views.SbomView(
                s.attachment_digest,
                s.format,
                s.spec_version or None,
                s.tool or None,
                s.package_count,
            )
            for s in a.sboms
        ],
    )


def _registry(r: pb.Registry) -> views.RegistryView:
    return views.RegistryView(
        name=names.parse_registry_name(r.name),
        host=r.host,
        insecure=r.insecure,
        ca_file=r.ca_file or None,
        credentials_ref=r.credentials_ref or None,
        repositories=list(r.repositories),
        index_schedule=r.index_schedule or None,
        last_index_at=convert.optional_datetime(r, "last_index_time"),
        last_index_status=enums.INDEX_STATUS.domain(r.last_index_status),
        last_index_started_at=convert.optional_datetime(r, "last_index_start_time"),
        last_index_error=r.last_index_error or None,
        last_index_errors=int(r.last_index_error_count)
        if r.last_index_status == pb.INDEX_STATUS_SUCCEEDED
        else None,
    )


def _by_name(view: views.RegistryView | views.TagView) -> views.Key:
    return (view.name,)


class RemoteCatalog:
    def __init__(self, server: str) -> None:
        self.connection = Connection(server)
        self.stub = catalog_pb2_grpc.CatalogServiceStub(self.connection.channel)
        self._call = self.connection.call
        self._pages = TokensByKey()

    def add_registry(self, spec: views.RegistrySpec) -> views.RegistryView:
        registry = pb.Registry(
            host=spec.host,
            insecure=spec.insecure,
            ca_file=spec.ca_file or "",
            credentials_ref=spec.credentials_ref or "",
            repositories=spec.repositories,
            index_schedule=spec.index_schedule or "",
        )
        request = pb.CreateRegistryRequest(registry_id=spec.name, registry=registry)
        return _registry(self._call(self.stub.CreateRegistry, request).registry)

    def list_registries(
        self, size: int = 0, after: views.Key | None = None
    ) -> views.Page[views.RegistryView]:
        """A page of registries by name, paged as on the database: ``after`` is the
        ``next_after`` (``(name,)``) of a page before."""
        token = self._pages.token("registries", after)
        request = pb.ListRegistriesRequest(page_size=size, page_token=token)
        answer = self._call(self.stub.ListRegistries, request)
        found = [_registry(r) for r in answer.registries]
        return self._pages.page("registries", found, _by_name, answer.next_page_token)

    def remove_registry(self, name: str) -> None:
        self._call(
            self.stub.DeleteRegistry, pb.DeleteRegistryRequest(name=names.registry_name(name))
        )

    async def index(self, name: str, on_progress: ProgressCallback | None = None) -> IndexStats:
        stats = IndexStats()
        async with self.connection.following() as channel:
            stub = catalog_pb2_grpc.CatalogServiceStub(channel)
            async for message in self.connection.idle_bounded(
                stub.IndexRegistry(pb.IndexRegistryRequest(name=names.registry_name(name)))
            ):
                p = message.progress
                stats.repositories_total = p.repositories_total
                stats.repositories_done = p.repositories_done
                stats.tags_seen = int(p.manifests_seen)
                stats.manifest_gets = int(p.manifests_fetched)
                stats.attachments_new = int(p.attachments)
                stats.errors = int(p.errors)
                if p.done:
                    stats.tag_events = int(p.stats.tags_changed)
                    stats.tags_gone = int(p.stats.tags_gone)
                    stats.manifests_new = int(p.stats.manifests_new)
                    stats.documents = int(p.stats.documents)
                    stats.locations_gone = int(p.stats.locations_gone)
                    stats.phase = "done"
                if on_progress is not None:
                    on_progress(stats)
        return stats

    def list_index_errors(
        self, registry: str, size: int = 0, after: views.Key | None = None
    ) -> views.Page[views.IndexErrorView]:
        request = pb.ListIndexErrorsRequest(parent=names.registry_name(registry), page_size=size)
        answer = self._call(self.stub.ListIndexErrors, request)
        return views.Page(
            [
                views.IndexErrorView(
                    repository=names.parse_repository_name(e.repository)[1]
                    if e.repository
                    else None,
                    reference=e.reference or None,
                    reason=e.reason,
                    observed_at=convert.datetime_of(e.observe_time),
                )
                for e in answer.index_errors
            ],
            None,
        )

    def artifact(self, reference: str) -> views.ArtifactView:
        if is_digest(reference):
            request = pb.GetArtifactRequest(name=names.artifact_name(reference))
            return _artifact(self._call(self.stub.GetArtifact, request).artifact)
        resolve = pb.ResolveArtifactRequest(reference=reference)
        return _artifact(self._call(self.stub.ResolveArtifact, resolve).artifact)

    def find(
        self,
        purl: str | None = None,
        name: str | None = None,
        version: str | None = None,
        size: int = 0,
        after: views.Key | None = None,
    ) -> views.Page[views.PackageMatch]:
        request = pb.SearchArtifactsByPackageRequest(
            purl=purl or "", package_name=name or "", package_version=version or "", page_size=size
        )
        answer = self._call(self.stub.SearchArtifactsByPackage, request)
        return views.Page(
            [
                views.PackageMatch(
                    views.PackageView(
                        m.package.purl or None,
                        m.package.type or None,
                        m.package.namespace or None,
                        m.package.name,
                        m.package.version or None,
                        list(m.package.licenses),
                    ),
                    names.parse_artifact_name(m.artifact),
                    _locations(m.locations),
                )
                for m in answer.matches
            ],
            None,
        )

    def list_tags(
        self,
        registry: str,
        repository: str,
        show_gone: bool = False,
        size: int = 0,
        after: views.Key | None = None,
    ) -> views.Page[views.TagView]:
        """A page of tags by name, paged as on the database (``after`` as for registries)."""
        parent = names.repository_name(registry, repository)
        token = self._pages.token((parent, show_gone), after)
        request = pb.ListTagsRequest(
            parent=parent, show_gone=show_gone, page_size=size, page_token=token
        )
        answer = self._call(self.stub.ListTags, request)
        found = [
            views.TagView(
                t.tag,
                t.digest,
                convert.datetime_of(t.update_time),
                convert.datetime_of(t.update_time) if t.gone else None,
            )
            for t in answer.tags
        ]
        return self._pages.page((parent, show_gone), found, _by_name, answer.next_page_token)

    def tag_events(
        self,
        registry: str,
        repository: str,
        tag: str,
        size: int = 0,
        after: views.Key | None = None,
    ) -> views.Page[views.TagEventView]:
        """The newest page of a tag's history (a server's events carry no key to go on from)."""
        parent = names.tag_name(registry, repository, tag)
        answer = self._call(
            self.stub.ListTagEvents, pb.ListTagEventsRequest(parent=parent, page_size=size)
        )
        return views.Page(
            [
                views.TagEventView(
                    tag,
                    e.old_digest or None,
                    e.new_digest or None,
                    convert.datetime_of(e.observe_time),
                )
                for e in answer.tag_events
            ],
            None,
        )
