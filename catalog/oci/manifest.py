"""Manifests: parsing and validation that keeps the raw bytes (the digest is of the raw bytes)."""

import json
from typing import Any, NamedTuple

from catalog.oci import mediatypes as mt
from catalog.oci.boundedjson import JSONRefused, loads
from catalog.oci.digest import Digest
from catalog.oci.errors import InvalidDigest, InvalidManifest, UnsupportedMediaType

DEFAULT_MANIFEST_LIMIT = 4 * 1024 * 1024
# Bounds on what a manifest may be, beyond its size: a real one nests five or six levels and a
# 4 MiB index of descriptors holds some 200,000 values; strings go into columns of these sizes.
MAX_DEPTH = 64
MAX_VALUES = 500_000
MAX_MEDIA_TYPE = 255
MAX_PLATFORM_FIELD = 64
MAX_ANNOTATION = 64 * 1024
_MAX_SIZE = 2**63  # sizes are int64 everywhere (distribution, the database)


# The records are named tuples, not frozen dataclasses: a dataclass's generated methods are
# compiled in every process that imports it (~4M instructions each at a command's start).
# Their ``annotations`` default is one shared empty dict: records never mutate it.
_NO_ANNOTATIONS: dict[str, str] = {}


class Platform(NamedTuple):
    os: str
    architecture: str
    variant: str | None = None
    os_version: str | None = None

    def __str__(self) -> str:
        text = f"{self.os}/{self.architecture}"
        return f"{text}/{self.variant}" if self.variant else text

    def to_json(self) -> dict[str, str]:
        out = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            out["variant"] = self.variant
        if self.os_version:
            out["os.version"] = self.os_version
        return out


class Descriptor(NamedTuple):
    media_type: str
    digest: Digest
    size: int
    artifact_type: str | None = None
    annotations: dict[str, str] = _NO_ANNOTATIONS
    platform: Platform | None = None
    urls: tuple[str, ...] = ()
    data: str | None = None

    @property
    def buildkit_attestation(self) -> bool:
        """Whether this index entry is one of BuildKit's attestation manifests."""
        return self.annotations.get(mt.BUILDKIT_REFERENCE_TYPE) == mt.BUILDKIT_ATTESTATION

    @property
    def attests(self) -> str | None:
        """What a BuildKit attestation entry names as its image: the annotation's text,
        unchecked (each caller decides what one that is not a digest means); None for any other
        entry or one naming nothing."""
        if not self.buildkit_attestation:
            return None
        return self.annotations.get(mt.BUILDKIT_REFERENCE_DIGEST)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": str(self.digest),
            "size": self.size,
        }
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.platform:
            out["platform"] = self.platform.to_json()
        return out


class Manifest(NamedTuple):
    """A parsed manifest or index with its exact bytes.

    ``layers`` is empty for an index; ``manifests`` is empty for an image manifest.
    """

    raw: bytes
    media_type: str
    digest: Digest
    config: Descriptor | None = None
    layers: tuple[Descriptor, ...] = ()
    manifests: tuple[Descriptor, ...] = ()
    subject: Descriptor | None = None
    artifact_type: str | None = None
    annotations: dict[str, str] = _NO_ANNOTATIONS

    @property
    def size(self) -> int:
        return len(self.raw)

    @property
    def is_index(self) -> bool:
        return self.media_type in mt.INDEXES

    @property
    def effective_artifact_type(self) -> str | None:
        """``artifactType``, else the config media type (how the referrers API reports it)."""
        if self.artifact_type:
            return self.artifact_type
        return self.config.media_type if self.config else None

    def descriptor(self) -> Descriptor:
        return Descriptor(
            self.media_type,
            self.digest,
            self.size,
            artifact_type=self.effective_artifact_type,
            annotations=self.annotations,
        )

    def blobs(self) -> tuple[Descriptor, ...]:
        """Config and layers: the blobs that must exist before this manifest is pushed."""
        return ((self.config,) if self.config else ()) + self.layers

    def json(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.raw)
        return result


def _require(obj: dict[str, Any], key: str, kind: type, where: str) -> Any:
    if key not in obj:
        raise InvalidManifest(f"{where}: missing {key!r}")
    value = obj[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise InvalidManifest(f"{where}: {key!r} must be a {kind.__name__}")
    return value


def _text(value: str, where: str, max_len: int) -> str:
    """A string the catalog keeps: bounded, no NUL, valid UTF-8 (no lone surrogate)."""
    if len(value) > max_len:
        raise InvalidManifest(f"{where}: {len(value)} characters, over the limit of {max_len}")
    if "\x00" in value:
        raise InvalidManifest(f"{where}: contains NUL")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidManifest(f"{where}: contains an unpaired surrogate") from None
    return value


def _string(obj: dict[str, Any], key: str, where: str, max_len: int) -> str:
    return _text(_require(obj, key, str, where), f"{where}.{key}", max_len)


def _optional_string(obj: dict[str, Any], key: str, where: str, max_len: int) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidManifest(f"{where}: {key} must be a string")
    return _text(value, f"{where}.{key}", max_len)


def _annotations(obj: dict[str, Any], where: str) -> dict[str, str]:
    value = obj.get("annotations")
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise InvalidManifest(f"{where}: annotations must map strings to strings")
    for key, text in value.items():
        _text(key, f"{where}.annotations", MAX_ANNOTATION)
        _text(text, f"{where}.annotations[{key[:64]!r}]", MAX_ANNOTATION)
    return dict(value)


def _platform(obj: Any, where: str) -> Platform | None:
    if obj is None:
        return None
    if not isinstance(obj, dict):
        raise InvalidManifest(f"{where}: platform must be an object")
    where = f"{where}.platform"
    variant, os_version = obj.get("variant"), obj.get("os.version")
    return Platform(
        os=_string(obj, "os", where, MAX_PLATFORM_FIELD),
        architecture=_string(obj, "architecture", where, MAX_PLATFORM_FIELD),
        variant=_text(variant, f"{where}.variant", MAX_PLATFORM_FIELD)
        if isinstance(variant, str)
        else None,
        os_version=_text(os_version, f"{where}.os.version", MAX_ANNOTATION)
        if isinstance(os_version, str)
        else None,
    )


def parse_descriptor(obj: Any, where: str) -> Descriptor:
    if not isinstance(obj, dict):
        raise InvalidManifest(f"{where}: a descriptor must be an object")
    media_type = _string(obj, "mediaType", where, MAX_MEDIA_TYPE)
    size = _require(obj, "size", int, where)
    if not 0 <= size < _MAX_SIZE:
        raise InvalidManifest(f"{where}: size {str(size)[:40]} is not an int64 byte count")
    try:
        digest = Digest.parse(_require(obj, "digest", str, where)[:1024])
    except InvalidDigest as exc:
        raise InvalidManifest(f"{where}: {exc}") from None
    artifact_type = _optional_string(obj, "artifactType", where, MAX_MEDIA_TYPE)
    urls = obj.get("urls") or []
    data = obj.get("data")
    return Descriptor(
        media_type=media_type,
        digest=digest,
        size=size,
        artifact_type=artifact_type,
        annotations=_annotations(obj, where),
        platform=_platform(obj.get("platform"), where),
        urls=tuple(u for u in urls if isinstance(u, str)) if isinstance(urls, list) else (),
        data=data if isinstance(data, str) else None,
    )


def _descriptor_list(doc: dict[str, Any], key: str, where: str) -> tuple[Descriptor, ...]:
    value = doc.get(key)
    if value is None:
        return ()
    if not isinstance(value, list):
        raise InvalidManifest(f"{where}: {key!r} must be a list")
    return tuple(parse_descriptor(item, f"{where}.{key}[{i}]") for i, item in enumerate(value))


def detect_media_type(doc: dict[str, Any], declared: str | None) -> str:
    """The manifest's media type: its ``mediaType`` field, the transport's, or by shape."""
    field_type = _optional_string(doc, "mediaType", "manifest", MAX_MEDIA_TYPE)
    if doc.get("schemaVersion") == 1:
        raise UnsupportedMediaType(
            "Docker schema 1 manifests are deprecated and not supported; "
            "re-push the image with a current client"
        )
    declared = (declared or "").split(";")[0].strip() or None
    if declared in mt.SCHEMA1 or field_type in mt.SCHEMA1:
        raise UnsupportedMediaType("Docker schema 1 manifests are not supported")
    if field_type and declared and declared in mt.MANIFESTS and field_type != declared:
        raise InvalidManifest(
            f"mediaType field {field_type!r} contradicts the announced type {declared!r}"
        )
    chosen = field_type or declared
    if chosen is None:
        # OCI allows omitting mediaType; fall back to the shape.
        chosen = mt.OCI_INDEX if "manifests" in doc else mt.OCI_MANIFEST
    if chosen == mt.OCI_ARTIFACT_MANIFEST:
        raise UnsupportedMediaType(
            f"{chosen} was dropped from OCI 1.1; artifacts are image manifests with artifactType"
        )
    if chosen not in mt.MANIFESTS:
        raise UnsupportedMediaType(f"unsupported manifest media type {chosen!r}")
    return chosen


def parse_manifest(
    raw: bytes, declared_media_type: str | None = None, digest: Digest | None = None
) -> Manifest:
    """Parse and validate manifest bytes; ``digest`` skips re-hashing what the caller verified.

    Whatever the bytes, the answer is a :class:`Manifest` or :class:`InvalidManifest` (nesting,
    value count, string lengths and sizes bounded: see the constants above).
    """
    try:
        doc = loads(raw, max_depth=MAX_DEPTH, max_values=MAX_VALUES)
    except JSONRefused as exc:
        raise InvalidManifest(f"manifest refused: {exc}") from None
    if not isinstance(doc, dict):
        raise InvalidManifest("manifest must be a JSON object")
    media_type = detect_media_type(doc, declared_media_type)
    if doc.get("schemaVersion") != 2:
        raise InvalidManifest("schemaVersion must be 2")
    where = "index" if media_type in mt.INDEXES else "manifest"
    artifact_type = _optional_string(doc, "artifactType", where, MAX_MEDIA_TYPE)
    subject = parse_descriptor(doc["subject"], f"{where}.subject") if "subject" in doc else None
    common: dict[str, Any] = {
        "raw": raw,
        "media_type": media_type,
        "digest": digest or Digest.of(raw),
        "subject": subject,
        "artifact_type": artifact_type,
        "annotations": _annotations(doc, where),
    }
    if media_type in mt.INDEXES:
        if "manifests" not in doc:
            raise InvalidManifest("index: missing 'manifests'")
        return Manifest(**common, manifests=_descriptor_list(doc, "manifests", where))
    config = parse_descriptor(_require(doc, "config", dict, where), f"{where}.config")
    if config.media_type == mt.OCI_EMPTY and not artifact_type:
        raise InvalidManifest("manifest: artifactType is required when the config is empty")
    if "layers" not in doc:
        raise InvalidManifest("manifest: missing 'layers'")
    return Manifest(**common, config=config, layers=_descriptor_list(doc, "layers", where))


def build_index(descriptors: list[Descriptor], annotations: dict[str, str] | None = None) -> bytes:
    """Serialise a new OCI index (used for referrers fallback indexes we write)."""
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_INDEX,
        "manifests": [d.to_json() for d in descriptors],
    }
    if annotations:
        doc["annotations"] = annotations
    return json.dumps(doc, separators=(",", ":")).encode()
