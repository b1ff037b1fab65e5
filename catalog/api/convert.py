"""Domain records → protobuf messages (the enum tables are in catalog.api.enums)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from catalog.api import enums, names
from catalog.api.v1 import catalog_pb2 as pb
from catalog.index.progress import IndexStats
from catalog.store import views


def datetime_of(stamp: Timestamp) -> datetime:
    """A protobuf time as an aware UTC datetime, as the store's views hold them."""
    return stamp.ToDatetime(tzinfo=UTC)


def optional_datetime(message: Any, field: str) -> datetime | None:
    """``message.field`` as :func:`datetime_of`, None when it is unset."""
    return datetime_of(getattr(message, field)) if message.HasField(field) else None


def timestamp(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def registry(view: views.RegistryView) -> pb.Registry:
    return pb.Registry(
        name=names.registry_name(view.name),
        host=view.host,
        insecure=view.insecure,
        ca_file=view.ca_file or "",
        credentials_ref=view.credentials_ref or "",
        index_schedule=view.index_schedule or "",
        last_index_time=timestamp(view.last_index_at),
        last_index_status=enums.INDEX_STATUS.proto(view.last_index_status),
        last_index_error=view.last_index_error or "",
        last_index_start_time=timestamp(view.last_index_started_at),
        last_index_error_count=view.last_index_errors or 0,
        repositories=view.repositories,
    )


def repository(registry_id: str, view: views.RepositoryView) -> pb.Repository:
    return pb.Repository(
        name=names.repository_name(registry_id, view.name),
        path=view.name,
        last_index_time=timestamp(view.last_indexed_at),
    )


def tag(registry_id: str, path: str, view: views.TagView) -> pb.Tag:
    return pb.Tag(
        name=names.tag_name(registry_id, path, view.name),
        tag=view.name,
        digest=view.digest,
        update_time=timestamp(view.updated_at),
        gone=view.gone_at is not None,
    )


def location(view: views.LocationView) -> pb.Location:
    return pb.Location(
        registry=names.registry_name(view.registry),
        repository=names.repository_name(view.registry, view.repository),
        tags=view.tags,
        first_seen_time=timestamp(view.first_seen),
        last_seen_time=timestamp(view.last_seen),
        gone=view.gone,
    )


def attachment(view: views.AttachmentView) -> pb.Attachment:
    return pb.Attachment(
        digest=view.digest,
        kind=enums.ATTACHMENT_KIND.proto(view.kind),
        scheme=enums.ATTACHMENT_SCHEME.proto(view.scheme),
        artifact_type=view.artifact_type or "",
        subject_digest=view.subject,
    )


def _platform(view: views.PlatformView) -> pb.Platform:
    return pb.Platform(
        os=view.os or "", architecture=view.architecture or "", variant=view.variant or ""
    )


def artifact(view: views.ArtifactView) -> pb.Artifact:
    return pb.Artifact(
        name=names.artifact_name(view.digest),
        digest=view.digest,
        media_type=view.media_type,
        artifact_type=view.artifact_type or "",
        size=view.size,
        platform=_platform(view.platform) if view.platform else None,
        platform_manifests=[
            pb.PlatformManifest(digest=c.digest, platform=_platform(c)) for c in view.children
        ],
        locations=[location(loc) for loc in view.locations],
        attachments=[attachment(a) for a in view.attachments],
        signatures=[
            pb.Signature(
                attachment_digest=s.attachment_digest,
                format=s.format,
                identity=s.identity or "",
                issuer=s.issuer or "",
                extensions={k: str(v) for k, v in s.extensions.items()},
                key_id=s.key_id or "",
                tlog_entry=pb.TransparencyLogEntry(
                    log_index=s.log_index,
                    integrated_time=timestamp(
                        datetime.fromtimestamp(s.integrated_time, UTC)
                        if s.integrated_time is not None
                        else None
                    ),
                )
                if s.log_index is not None
                else None,
                signed_digests=s.signed_digests,
            )
            for s in view.signatures
        ],
        attestations=[
            pb.Attestation(
                attachment_digest=a.attachment_digest,
                predicate_type=a.predicate_type,
                provenance=pb.Provenance(
                    builder_id=a.provenance.builder_id or "",
                    build_type=a.provenance.build_type or "",
                    source_uri=a.provenance.source_uri or "",
                    source_digest=a.provenance.source_digest or "",
                    source_ref=a.provenance.source_ref or "",
                    entry_point=a.provenance.entry_point or "",
                )
                if a.provenance
                else None,
            )
            for a in view.attestations
        ],
        sboms=[
            pb.SbomSummary(
                attachment_digest=s.attachment_digest,
                format=s.format,
                spec_version=s.spec_version or "",
                tool=s.tool or "",
                package_count=s.package_count,
            )
            for s in view.sboms
        ],
    )


def package_match(view: views.PackageMatch) -> pb.PackageMatch:
    p = view.package
    return pb.PackageMatch(
        package=pb.Package(
            purl=p.purl or "",
            type=p.type or "",
            namespace=p.namespace or "",
            name=p.name,
            version=p.version or "",
            licenses=p.licenses,
        ),
        artifact=names.artifact_name(view.artifact_digest),
        locations=[location(loc) for loc in view.locations],
    )


def index_error(registry_id: str, view: views.IndexErrorView) -> pb.IndexError:
    return pb.IndexError(
        registry=names.registry_name(registry_id),
        repository=names.repository_name(registry_id, view.repository) if view.repository else "",
        reference=view.reference or "",
        reason=view.reason,
        observe_time=timestamp(view.observed_at),
    )


_PHASES = {
    "listing repositories": pb.INDEX_PHASE_LISTING_REPOSITORIES,
    "indexing": pb.INDEX_PHASE_INDEXING_REPOSITORIES,
    "done": pb.INDEX_PHASE_DONE,
}


def progress(stats: IndexStats, started: datetime, done: bool) -> pb.IndexProgress:
    message = pb.IndexProgress(
        phase=_PHASES.get(stats.phase, pb.INDEX_PHASE_UNSPECIFIED),
        repositories_done=stats.repositories_done,
        repositories_total=stats.repositories_total,
        manifests_seen=stats.tags_seen,
        manifests_fetched=stats.manifest_gets,
        attachments=stats.attachments_new,
        errors=stats.errors,
        done=done,
    )
    if done:
        message.stats.CopyFrom(
            pb.IndexStats(
                status=pb.INDEX_STATUS_SUCCEEDED,  # a failed run ends the stream with an error
                start_time=timestamp(started),
                end_time=timestamp(datetime.now(UTC)),
                repositories=stats.repositories_done,
                tags=stats.tags_seen,
                tags_changed=stats.tag_events,
                tags_gone=stats.tags_gone,
                manifests_seen=stats.tags_seen,
                manifests_fetched=stats.manifest_gets,
                attachments=stats.attachments_new,
                errors=stats.errors,
                manifests_new=stats.manifests_new,
                documents=stats.documents,
                locations_gone=stats.locations_gone,
            )
        )
    return message
