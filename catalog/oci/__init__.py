"""OCI: references, digests, manifests, the async registry client, image layouts, copies.

What another program imports is named here; the modules, one job each:

- ``reference``, ``digest``, ``mediatypes``, ``manifest``: the vocabulary, parsed and checked;
- ``client`` (with ``options``, ``credentials``, ``auth``, ``retry``): one registry host's
  distribution API; its private parts are ``_http`` (auth, retries, the concurrency limit, the
  bounds on answers) with one of two transports carrying the bytes (``_transport``: aiohttp, for
  servers; ``_stdlib``: http.client, for one-shot commands, which then never import aiohttp;
  ``RegistryOptions.transport`` chooses), ``_uploads`` (chunked blob uploads) and ``_referrers``
  (the referrers API and its fallback tag);
- ``open``: a client from the settings the catalog stores for a registry;
- ``layout``: OCI image-layout directories; ``repository``: one interface over both;
- ``attachments``, ``describe``: what is attached to a manifest, what a reference resolves to;
- ``platforms``: an index's images, and the one for a platform (``--platform``);
- ``copy``: digest-preserving copies between repositories; ``globs``: repository patterns;
- ``errors``: everything raised here derives from :class:`OCIError`.
"""

from typing import TYPE_CHECKING

from catalog.lazy import lazy_exports

if TYPE_CHECKING:
    from catalog.oci.attachments import Attachment, find_attachments
    from catalog.oci.client import Referrers, RegistryClient, fallback_index
    from catalog.oci.copy import Copier, copy_manifest, copy_tag
    from catalog.oci.credentials import (
        AuthFiles,
        Credentials,
        CredentialStore,
        DockerConfig,
    )
    from catalog.oci.describe import Inspection, inspect, open_reference
    from catalog.oci.digest import Digest, StreamVerifier, is_digest, verify_bytes
    from catalog.oci.errors import (
        AuthError,
        BlobUnknown,
        Denied,
        DigestMismatch,
        InvalidDigest,
        InvalidManifest,
        InvalidReference,
        LayoutError,
        ManifestTooLarge,
        ManifestUnknown,
        NameUnknown,
        NotInRegistry,
        OCIError,
        RegistryError,
        RegistryUnavailable,
        Rejected,
        SizeMismatch,
        TooManyRequests,
        Unauthorized,
        Unsupported,
        UnsupportedMediaType,
    )
    from catalog.oci.layout import LayoutRepository
    from catalog.oci.manifest import (
        DEFAULT_MANIFEST_LIMIT,
        Descriptor,
        Manifest,
        Platform,
        build_index,
        parse_descriptor,
        parse_manifest,
    )
    from catalog.oci.open import client_for
    from catalog.oci.options import RegistryOptions
    from catalog.oci.platforms import PlatformChoice, platform_images
    from catalog.oci.reference import (
        DOCKER_HUB,
        ImageReference,
        LayoutReference,
        Reference,
        parse_image_reference,
        parse_layout_reference,
        parse_reference,
        validate_repository,
        validate_tag,
    )
    from catalog.oci.repository import RemoteRepository, Repository
    from catalog.oci.retry import RetryPolicy
    from catalog.oci.secrets import NamedCredentials, Secrets

__all__ = [
    "DEFAULT_MANIFEST_LIMIT",
    "DOCKER_HUB",
    "Attachment",
    "AuthError",
    "AuthFiles",
    "BlobUnknown",
    "Copier",
    "CredentialStore",
    "Credentials",
    "Denied",
    "Descriptor",
    "Digest",
    "DigestMismatch",
    "DockerConfig",
    "ImageReference",
    "Inspection",
    "InvalidDigest",
    "InvalidManifest",
    "InvalidReference",
    "LayoutError",
    "LayoutReference",
    "LayoutRepository",
    "Manifest",
    "ManifestTooLarge",
    "ManifestUnknown",
    "NameUnknown",
    "NamedCredentials",
    "NotInRegistry",
    "OCIError",
    "Platform",
    "PlatformChoice",
    "Reference",
    "Referrers",
    "RegistryClient",
    "RegistryError",
    "RegistryOptions",
    "RegistryUnavailable",
    "Rejected",
    "RemoteRepository",
    "Repository",
    "RetryPolicy",
    "Secrets",
    "SizeMismatch",
    "StreamVerifier",
    "TooManyRequests",
    "Unauthorized",
    "Unsupported",
    "UnsupportedMediaType",
    "build_index",
    "client_for",
    "copy_manifest",
    "copy_tag",
    "fallback_index",
    "find_attachments",
    "inspect",
    "is_digest",
    "open_reference",
    "parse_descriptor",
    "parse_image_reference",
    "parse_layout_reference",
    "parse_manifest",
    "parse_reference",
    "platform_images",
    "validate_repository",
    "validate_tag",
    "verify_bytes",
]
__getattr__ = lazy_exports(
    __name__,
    {
        "Attachment": "attachments",
        "find_attachments": "attachments",
        "Referrers": "client",
        "RegistryClient": "client",
        "fallback_index": "client",
        "Copier": "copy",
        "copy_manifest": "copy",
        "copy_tag": "copy",
        "AuthFiles": "credentials",
        "Credentials": "credentials",
        "CredentialStore": "credentials",
        "DockerConfig": "credentials",
        "Inspection": "describe",
        "inspect": "describe",
        "open_reference": "describe",
        "Digest": "digest",
        "StreamVerifier": "digest",
        "is_digest": "digest",
        "verify_bytes": "digest",
        "AuthError": "errors",
        "BlobUnknown": "errors",
        "Denied": "errors",
        "DigestMismatch": "errors",
        "InvalidDigest": "errors",
        "InvalidManifest": "errors",
        "InvalidReference": "errors",
        "LayoutError": "errors",
        "ManifestTooLarge": "errors",
        "ManifestUnknown": "errors",
        "NameUnknown": "errors",
        "NotInRegistry": "errors",
        "OCIError": "errors",
        "RegistryError": "errors",
        "RegistryUnavailable": "errors",
        "Rejected": "errors",
        "SizeMismatch": "errors",
        "TooManyRequests": "errors",
        "Unauthorized": "errors",
        "Unsupported": "errors",
        "UnsupportedMediaType": "errors",
        "LayoutRepository": "layout",
        "DEFAULT_MANIFEST_LIMIT": "manifest",
        "Descriptor": "manifest",
        "Manifest": "manifest",
        "Platform": "manifest",
        "build_index": "manifest",
        "parse_descriptor": "manifest",
        "parse_manifest": "manifest",
        "client_for": "open",
        "PlatformChoice": "platforms",
        "platform_images": "platforms",
        "RegistryOptions": "options",
        "DOCKER_HUB": "reference",
        "ImageReference": "reference",
        "LayoutReference": "reference",
        "Reference": "reference",
        "parse_image_reference": "reference",
        "parse_layout_reference": "reference",
        "parse_reference": "reference",
        "validate_repository": "reference",
        "validate_tag": "reference",
        "RemoteRepository": "repository",
        "Repository": "repository",
        "RetryPolicy": "retry",
        "NamedCredentials": "secrets",
        "Secrets": "secrets",
    },
)
