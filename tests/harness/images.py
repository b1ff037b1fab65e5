"""Random but realistic OCI / Docker images, built in memory as the exact bytes to push.

Manifests are serialized with indent=3 on purpose: a client that re-serializes JSON changes the
digest, and tests should catch that. Every digest is sha256 over the exact bytes held here.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import itertools
import json
import random
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any, cast

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
MANIFEST_TYPES = (OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST)
ACCEPT = ", ".join(MANIFEST_TYPES)  # an Accept header that gets any of them from Distribution

DEFAULT_PLATFORMS: list[tuple[str, str, str | None]] = [
    ("linux", "amd64", None),
    ("linux", "arm64", "v8"),
]


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def serialize(obj: Any) -> bytes:
    """Deliberately non-canonical JSON (indent=3, insertion order, trailing newline)."""
    return (json.dumps(obj, indent=3) + "\n").encode()


@dataclass
class Blob:
    media_type: str
    data: bytes
    digest: str  # "sha256:<hex>" of data
    size: int
    diff_id: str | None = None  # sha256 of the uncompressed tar, for layers

    @classmethod
    def of(cls, media_type: str, data: bytes, diff_id: str | None = None) -> Blob:
        return cls(media_type, data, sha256_digest(data), len(data), diff_id)

    def descriptor(self, media_type: str | None = None) -> dict[str, Any]:
        return {
            "mediaType": media_type or self.media_type,
            "digest": self.digest,
            "size": self.size,
        }

    def uncompressed_digest(self) -> str:
        """The diff_id: sha256 of the gunzipped bytes (computed when not recorded)."""
        if self.diff_id is None:
            self.diff_id = sha256_digest(gzip.decompress(self.data))
        return self.diff_id


def empty_config() -> Blob:
    """The OCI 1.1 empty descriptor's blob: `{}` (sha256:44136fa3…, 2 bytes)."""
    return Blob.of(OCI_EMPTY, b"{}")


@dataclass
class BuiltManifest:
    media_type: str
    raw: bytes  # the exact bytes to PUT
    digest: str
    size: int
    blobs: list[Blob]  # config first, then layers; empty for an index
    children: list[BuiltManifest]  # an index's manifests, in order
    platform: dict[str, str] | None
    artifact_type: str | None = None
    annotations: dict[str, str] | None = None
    subject: BuiltManifest | None = None

    @property
    def is_index(self) -> bool:
        return self.media_type in (OCI_INDEX, DOCKER_LIST)

    @property
    def config(self) -> Blob | None:
        return None if self.is_index else self.blobs[0]

    @property
    def layers(self) -> list[Blob]:
        return [] if self.is_index else self.blobs[1:]

    def json(self) -> Any:
        return json.loads(self.raw)

    def descriptor(self) -> dict[str, Any]:
        """The descriptor an index (or a subject field) uses for this manifest."""
        desc: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
        }
        if self.platform is not None:
            desc["platform"] = self.platform
        if self.artifact_type is not None and self.media_type == OCI_MANIFEST:
            desc["artifactType"] = self.artifact_type
        return desc

    def walk(self) -> Iterator[BuiltManifest]:
        """Every manifest in push order: children before their index (depth first)."""
        for child in self.children:
            yield from child.walk()
        yield self

    def all_blobs(self) -> list[Blob]:
        """Every blob under this manifest, each digest once, in first-use order."""
        seen: dict[str, Blob] = {}
        for manifest in self.walk():
            for blob in manifest.blobs:
                seen.setdefault(blob.digest, blob)
        return list(seen.values())


def _manifest(
    obj: dict[str, Any],
    media_type: str,
    blobs: list[Blob],
    children: list[BuiltManifest],
    platform: dict[str, str] | None,
    artifact_type: str | None = None,
    annotations: dict[str, str] | None = None,
    subject: BuiltManifest | None = None,
) -> BuiltManifest:
    raw = serialize(obj)
    return BuiltManifest(
        media_type,
        raw,
        sha256_digest(raw),
        len(raw),
        blobs,
        children,
        platform,
        artifact_type,
        annotations,
        subject,
    )


class _HashingWriter:
    """File-like sink for tarfile: hashes the tar stream (the diff_id) and gzips it."""

    def __init__(self, sink: gzip.GzipFile) -> None:
        self.sink = sink
        self.hash = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        return self.sink.write(data)


class _RandomReader:
    """A file-like source of `size` random bytes, so big layers never sit in memory twice."""

    def __init__(self, rng: random.Random, size: int) -> None:
        self.rng = rng
        self.left = size

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        self.left -= n
        return self.rng.randbytes(n)


def _file_sizes(rng: random.Random, size: int) -> list[int]:
    # Gzip of random data is ~0.03% larger than the input; each tar member adds a header that
    # compresses to a few dozen bytes. Aim the payload so the blob lands close to `size`.
    count = 1 if size < 4096 else rng.randint(2, 4)
    payload = max(0, int(size / 1.0003) - 40 * count - 30)
    cuts = sorted(rng.randint(0, payload) for _ in range(count - 1))
    bounds = [0, *cuts, payload]
    return [b - a for a, b in itertools.pairwise(bounds)]


def random_layer(rng: random.Random, size: int, *, media_type: str = OCI_LAYER) -> Blob:
    """A real gzip'd tar of a few files of random bytes; the blob is close to `size` bytes."""
    out = io.BytesIO()
    top = f"layer-{rng.getrandbits(48):012x}"
    mtime = 1_700_000_000 + rng.randrange(10_000_000)
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=1, mtime=0, filename="") as gz:
        writer = _HashingWriter(gz)
        sink = cast(IO[bytes], writer)  # stream mode only ever calls write()
        with tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            folder = tarfile.TarInfo(top)
            folder.type = tarfile.DIRTYPE
            folder.mode = 0o755
            folder.mtime = mtime
            tar.addfile(folder)
            for i, file_size in enumerate(_file_sizes(rng, size)):
                info = tarfile.TarInfo(f"{top}/file-{i}.bin")
                info.size = file_size
                info.mode = 0o644
                info.mtime = mtime
                tar.addfile(info, _RandomReader(rng, file_size))
    diff_id = "sha256:" + writer.hash.hexdigest()
    return Blob.of(media_type, out.getvalue(), diff_id)


def _platform(platform: dict[str, str] | None) -> dict[str, str]:
    return dict(platform) if platform is not None else {"os": "linux", "architecture": "amd64"}


def _config_blob(
    rng: random.Random, layers: list[Blob], platform: dict[str, str], media_type: str
) -> Blob:
    created = f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T12:00:00Z"
    config: dict[str, Any] = {
        "created": created,
        "architecture": platform["architecture"],
        "os": platform["os"],
    }
    if "variant" in platform:
        config["variant"] = platform["variant"]
    config["config"] = {
        "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        "Cmd": ["/bin/sh"],
        "Labels": {"test.nonce": f"{rng.getrandbits(64):016x}"},
    }
    config["rootfs"] = {"type": "layers", "diff_ids": [b.uncompressed_digest() for b in layers]}
    config["history"] = [
        {"created": created, "created_by": f"ADD layer {i}"} for i in range(len(layers))
    ]
    return Blob.of(media_type, serialize(config))


def build_image(
    rng: random.Random,
    *,
    layers: int = 3,
    layer_size: int = 64 * 1024,
    base: Blob | None = None,
    platform: dict[str, str] | None = None,
    docker: bool = False,
    annotations: dict[str, str] | None = None,
    subject: BuiltManifest | None = None,
    artifact_type: str | None = None,
) -> BuiltManifest:
    """An image manifest with a config and `layers` fresh layers (after `base`, when given).

    docker=True gives a Docker schema 2 manifest (no annotations, subject or artifactType there).
    """
    if docker and (annotations or subject is not None or artifact_type is not None):
        raise ValueError("Docker schema 2 manifests have no annotations/subject/artifactType")
    layer_type = DOCKER_LAYER if docker else OCI_LAYER
    plat = _platform(platform)
    blobs: list[Blob] = []
    if base is not None:
        blobs.append(
            Blob(layer_type, base.data, base.digest, base.size, base.uncompressed_digest())
        )
    blobs += [random_layer(rng, layer_size, media_type=layer_type) for _ in range(layers)]
    config = _config_blob(rng, blobs, plat, DOCKER_CONFIG if docker else OCI_CONFIG)
    media_type = DOCKER_MANIFEST if docker else OCI_MANIFEST
    obj: dict[str, Any] = {"schemaVersion": 2, "mediaType": media_type}
    if artifact_type is not None:
        obj["artifactType"] = artifact_type
    obj["config"] = config.descriptor()
    obj["layers"] = [b.descriptor() for b in blobs]
    if subject is not None:
        obj["subject"] = _subject_descriptor(subject)
    if annotations:
        obj["annotations"] = dict(annotations)
    return _manifest(
        obj, media_type, [config, *blobs], [], plat, artifact_type, annotations, subject
    )


def _subject_descriptor(subject: BuiltManifest) -> dict[str, Any]:
    return {"mediaType": subject.media_type, "digest": subject.digest, "size": subject.size}


def build_index(
    children: list[BuiltManifest],
    *,
    docker: bool = False,
    annotations: dict[str, str] | None = None,
) -> BuiltManifest:
    """An OCI image index (or Docker manifest list) over `children`, with their platforms."""
    if docker and annotations:
        raise ValueError("Docker manifest lists have no annotations")
    media_type = DOCKER_LIST if docker else OCI_INDEX
    obj: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "manifests": [c.descriptor() for c in children],
    }
    if annotations:
        obj["annotations"] = dict(annotations)
    return _manifest(obj, media_type, [], list(children), None, None, annotations)


def build_multiplatform(
    rng: random.Random,
    platforms: list[tuple[str, str, str | None]] | None = None,
    base: Blob | None = None,
    *,
    docker: bool = False,
    annotations: dict[str, str] | None = None,
    layers: int = 2,
    layer_size: int = 32 * 1024,
) -> BuiltManifest:
    """An index with one image per (os, architecture, variant), all sharing `base` if given."""
    children = []
    for os_name, arch, variant in platforms if platforms is not None else DEFAULT_PLATFORMS:
        plat = {"architecture": arch, "os": os_name}
        if variant is not None:
            plat["variant"] = variant
        children.append(
            build_image(
                rng, layers=layers, layer_size=layer_size, base=base, platform=plat, docker=docker
            )
        )
    return build_index(children, docker=docker, annotations=annotations)


def build_artifact(
    subject: BuiltManifest,
    artifact_type: str,
    payload: bytes,
    payload_media_type: str,
    annotations: dict[str, str] | None = None,
) -> BuiltManifest:
    """An OCI 1.1 artifact: empty config, one layer holding `payload`, `subject` set."""
    layer = Blob.of(payload_media_type, payload)
    config = empty_config()
    obj: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": config.descriptor(),
        "layers": [layer.descriptor()],
        "subject": _subject_descriptor(subject),
    }
    if annotations:
        obj["annotations"] = dict(annotations)
    return _manifest(
        obj, OCI_MANIFEST, [config, layer], [], None, artifact_type, annotations, subject
    )


def referrers_tag(digest: str) -> str:
    """The OCI 1.1 fallback tag for `digest`: "sha256:<hex>" → "sha256-<hex>"."""
    alg, _, hexpart = digest.partition(":")
    return f"{alg[:32]}-{hexpart[:64]}"
