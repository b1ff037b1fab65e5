"""OCI image-layout directories (``oci-layout``, ``index.json``, ``blobs/<alg>/<hex>``).

A layout is read and written as one :class:`~catalog.oci.repository.Repository`. Tags are the
``org.opencontainers.image.ref.name`` annotations of ``index.json``. Layouts written by
``cosign save`` mark their entries with a ``kind`` annotation instead: their image is shown as
``latest`` (unless an entry is named so) and their signatures, attestations and SBOMs under the
tags cosign would push them to (``sha256-<hex>.sig|.att|.sbom``), so they copy, inspect and
index like their registry counterparts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import stat
import tempfile
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from catalog.files import FileTooLarge, read_capped
from catalog.oci import mediatypes as mt
from catalog.oci.client import Referrers
from catalog.oci.digest import Digest, Verifier, is_digest, verify_bytes
from catalog.oci.errors import InvalidManifest, LayoutError, ManifestTooLarge, ManifestUnknown
from catalog.oci.manifest import (
    DEFAULT_MANIFEST_LIMIT,
    Descriptor,
    Manifest,
    build_index,
    parse_manifest,
)

if TYPE_CHECKING:
    from catalog.oci.repository import Repository

REF_NAME = "org.opencontainers.image.ref.name"
COSIGN_KIND = "kind"
_COSIGN_IMAGE_KINDS = {"dev.cosignproject.cosign/image", "dev.cosignproject.cosign/imageIndex"}
_COSIGN_SUFFIX = {
    "dev.cosignproject.cosign/sigs": "sig",
    "dev.cosignproject.cosign/atts": "att",
    "dev.cosignproject.cosign/sboms": "sbom",
}
_READ_CHUNK = 1024 * 1024
_LAYOUT_FILE = b'{"imageLayoutVersion":"1.0.0"}'
# index.json lists every tag and referrer of the layout (~300 bytes each): 16 MiB is some
# 50,000 entries. A larger one is refused before it is read, not parsed into a gigabyte.
DEFAULT_INDEX_LIMIT = 16 * 1024 * 1024
_MARKER_LIMIT = 4096  # oci-layout holds one short JSON object


class LayoutRepository:
    """An OCI image-layout directory as a source or a destination."""

    def __init__(
        self,
        path: Path,
        *,
        create: bool = False,
        manifest_limit: int = DEFAULT_MANIFEST_LIMIT,
        index_limit: int = DEFAULT_INDEX_LIMIT,
    ) -> None:
        self.root = path.resolve()
        self.manifest_limit = manifest_limit
        self.index_limit = index_limit
        marker = self.root / "oci-layout"
        if create and not marker.exists():
            if self.root.exists() and any(self.root.iterdir()):
                raise LayoutError(f"{path} exists and is not an OCI image layout")
            (self.root / "blobs").mkdir(parents=True, exist_ok=True)
            marker.write_bytes(_LAYOUT_FILE)
            (self.root / "index.json").write_bytes(build_index([]))
        if not self.root.is_dir():
            raise LayoutError(f"{path}: no such directory")
        try:
            version = json.loads(read_capped(marker, _MARKER_LIMIT)).get("imageLayoutVersion")
        except (OSError, ValueError, AttributeError, RecursionError):
            raise LayoutError(
                f"{path} is not an OCI image layout (no valid oci-layout file)"
            ) from None
        if not isinstance(version, str) or not version.startswith("1."):
            raise LayoutError(f"{path}: unsupported imageLayoutVersion {version!r}")

    @property
    def name(self) -> str:
        return f"oci:{self.root}"

    # -- paths and index.json --------------------------------------------------------------

    def blob_path_unchecked(self, digest: Digest) -> Path:
        return self.root / "blobs" / digest.algorithm / digest.hex

    def blob_path(self, digest: Digest) -> Path:
        """The file of a blob; refuses anything that would resolve outside the layout."""
        path = self.blob_path_unchecked(digest)
        real = path.resolve()
        if not real.is_relative_to(self.root):
            raise LayoutError(f"blob {digest} resolves outside the layout ({real})")
        return path

    def _index(self) -> Manifest:
        try:
            raw = read_capped(self.root / "index.json", self.index_limit)
        except FileTooLarge as exc:
            # Content refused (exit 6), as a registry's oversized manifest is.
            raise InvalidManifest(f"{self.root}/index.json is {exc}") from None
        except OSError as exc:
            raise LayoutError(f"{self.root}: cannot read index.json: {exc}") from None
        try:
            return parse_manifest(raw, mt.OCI_INDEX)
        except InvalidManifest as exc:
            raise LayoutError(f"{self.root}/index.json: {exc}") from None

    def _write_index(self, descriptors: list[Descriptor], annotations: dict[str, str]) -> None:
        raw = build_index(descriptors, annotations or None)
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".index.json.")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(raw)
                _on_disk(f)
            # The blobs' renames first (one sync of their folders, not one a blob): index.json
            # must not name a blob a crash could take back.
            for folder in (self.root / "blobs").iterdir():
                if folder.is_dir():
                    _folder_on_disk(folder)
            os.replace(tmp, self.root / "index.json")
            _folder_on_disk(self.root)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def _tagged(self) -> dict[str, Descriptor]:
        entries = self._index().manifests
        tags = {d.annotations[REF_NAME]: d for d in entries if REF_NAME in d.annotations}
        images = [d for d in entries if d.annotations.get(COSIGN_KIND) in _COSIGN_IMAGE_KINDS]
        if len(images) == 1:
            tags.setdefault("latest", images[0])
            subject = images[0].digest
            for d in entries:
                suffix = _COSIGN_SUFFIX.get(d.annotations.get(COSIGN_KIND, ""))
                if suffix:
                    tags.setdefault(f"{subject.fallback_tag()}.{suffix}", d)
        return tags

    def default_ref(self) -> str:
        """What ``oci:PATH`` with no tag means: the layout's only image."""
        entries = [
            d
            for d in self._index().manifests
            if d.annotations.get(COSIGN_KIND) not in _COSIGN_SUFFIX
        ]
        if len(entries) == 1:
            return str(entries[0].digest)
        if any(d.annotations.get(REF_NAME) == "latest" for d in entries):
            return "latest"
        raise LayoutError(
            f"{self.root} holds {len(entries)} images;"
            " pick one with oci:PATH:TAG or oci:PATH@DIGEST"
        )

    # -- manifests -------------------------------------------------------------------------

    async def resolve(self, ref: str) -> Descriptor | None:
        # index.json and manifests are read and parsed on worker threads: a large one must not
        # stall the event loop of a server indexing the layout.
        if not is_digest(ref):
            return (await asyncio.to_thread(self._tagged)).get(ref)
        digest = Digest.parse(ref)
        for d in (await asyncio.to_thread(self._index)).manifests:
            if d.digest == digest:
                return d
        if not self.blob_path(digest).exists():
            return None
        return (await self.get_manifest(ref)).descriptor()

    async def get_manifest(self, ref: str) -> Manifest:
        descriptor = await self.resolve(ref) if not is_digest(ref) else None
        if not is_digest(ref) and descriptor is None:
            raise ManifestUnknown(f"{self.root}: no manifest tagged {ref!r}")
        digest = descriptor.digest if descriptor else Digest.parse(ref)
        return await asyncio.to_thread(self._read_manifest, digest, descriptor)

    def _read_manifest(self, digest: Digest, descriptor: Descriptor | None) -> Manifest:
        path = self.blob_path(digest)
        try:
            raw = read_capped(path, self.manifest_limit)
        except FileNotFoundError:
            raise ManifestUnknown(f"{self.root}: no manifest {digest}") from None
        except FileTooLarge:
            raise ManifestTooLarge(self.manifest_limit) from None
        except OSError as exc:
            raise LayoutError(f"{self.root}: cannot read manifest {digest}: {exc}") from None
        verify_bytes(raw, digest, descriptor.size if descriptor else None, "manifest")
        return parse_manifest(raw, descriptor.media_type if descriptor else None, digest)

    async def put_manifest(
        self, manifest: Manifest, tag: str | None = None, *, fallback_index: bool = True
    ) -> None:
        """Store the manifest blob; tagged or with a subject, it is also listed in index.json.

        A layout has no fallback tags: index.json is its referrers listing, so a manifest with a
        subject is listed whatever ``fallback_index`` says.
        """
        await self.push_blob(manifest.digest, manifest.raw)
        if tag is None and manifest.subject is None:
            return
        index = self._index()
        descriptor = manifest.descriptor()
        if tag:
            descriptor = Descriptor(
                descriptor.media_type,
                descriptor.digest,
                descriptor.size,
                artifact_type=manifest.artifact_type,
                annotations={REF_NAME: tag},
            )
        kept = [
            d
            for d in index.manifests
            if not (tag and d.annotations.get(REF_NAME) == tag)
            and not (not tag and d.digest == manifest.digest)
        ]
        self._write_index([*kept, descriptor], index.annotations)

    async def tags(self) -> AsyncIterator[str]:
        for tag in sorted(await asyncio.to_thread(self._tagged)):
            yield tag

    async def referrers(
        self, digest: Digest, artifact_type: str | None = None, fallback: bool = True
    ) -> Referrers:
        """Manifests listed in index.json whose ``subject`` is ``digest`` (no fallback here)."""
        found = []
        for d in (await asyncio.to_thread(self._index)).manifests:
            if d.media_type not in mt.MANIFESTS or not self.blob_path(d.digest).exists():
                continue
            manifest = await self.get_manifest(str(d.digest))
            if manifest.subject and manifest.subject.digest == digest:
                descriptor = manifest.descriptor()
                if artifact_type is None or descriptor.artifact_type == artifact_type:
                    found.append(descriptor)
        return Referrers(found, "layout-index")

    # -- blobs -----------------------------------------------------------------------------

    async def has_blob(self, digest: Digest) -> bool:
        return self.blob_path(digest).is_file()

    async def mount_blob(self, digest: Digest, source: Repository) -> bool:
        """Every image of a layout shares its blob store: a blob is here or nowhere."""
        return await self.has_blob(digest)

    async def blob_chunks(self, digest: Digest, size: int | None = None) -> AsyncIterator[bytes]:
        verifier = Verifier(digest, size)
        path = self.blob_path(digest)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        except FileNotFoundError:
            raise LayoutError(f"{self.root}: blob {digest} is missing") from None
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise LayoutError(f"{self.root}: blob {digest} is not a regular file")
            while chunk := await asyncio.to_thread(f.read, _READ_CHUNK):
                verifier.update(chunk)
                yield chunk
        verifier.verify()

    async def push_blob(
        self,
        digest: Digest,
        content: bytes | AsyncIterable[bytes],
        size: int | None = None,
        *,
        verified: bool = False,
    ) -> None:
        """Write to a temporary file, verify, then rename: a bad stream leaves nothing behind.

        The check runs as the bytes are written, so it is kept even for ``verified`` content.
        """
        target = self.blob_path(digest)
        if target.exists():
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        verifier = Verifier(digest, size)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".upload.")
        try:
            with os.fdopen(fd, "wb") as f:
                if isinstance(content, bytes):
                    verifier.update(content)
                    f.write(content)
                else:
                    async for chunk in content:
                        verifier.update(chunk)
                        await asyncio.to_thread(f.write, chunk)
                verifier.verify()
                await asyncio.to_thread(_on_disk, f)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise


def _on_disk(file: BinaryIO) -> None:
    """``file``'s bytes on the disk before it is renamed into place: a rename may reach the disk
    before the data, and a crash then leaves an empty blob or ``index.json`` under its name."""
    file.flush()
    os.fsync(file.fileno())


def _folder_on_disk(folder: Path) -> None:
    """The renames into ``folder`` on the disk (a rename may reach it before the data)."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
