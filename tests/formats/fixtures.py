"""Reading the shared real-world fixtures the way a registry would hand them to the decoders."""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# CI lays shared/ beside the clone; XREGISTRY_FIXTURES points elsewhere when it is not.
FIXTURES = Path(
    os.environ.get("XREGISTRY_FIXTURES")
    or Path(__file__).resolve().parents[3] / "shared" / "fixtures"
)
COSIGN_LEGACY = FIXTURES / "cosign-legacy"
CONFORMANCE = FIXTURES / "sigstore-conformance" / "bundle-verify"
SBOMS = FIXTURES / "sbom"
SLSA_CONTAINER = FIXTURES / "slsa-container"

_SIGSTORE_JSON = b"\x00sigstore-json\n"


@dataclass(frozen=True)
class CosignLayer:
    media_type: str
    payload: bytes
    annotations: dict[str, str]


def sigstore_json(path: Path) -> CosignLayer:
    """containers/image's on-disk form of one cosign ``.sig`` layer."""
    data = path.read_bytes()
    assert data.startswith(_SIGSTORE_JSON), f"{path} is not a sigstore-json signature"
    doc = json.loads(data[len(_SIGSTORE_JSON) :])
    return CosignLayer(doc["mimeType"], base64.b64decode(doc["payload"]), doc["annotations"])


@dataclass(frozen=True)
class Layout:
    """An OCI image layout directory (``cosign save`` output)."""

    root: Path

    def blob(self, digest: str) -> bytes:
        algorithm, _, hex_value = digest.partition(":")
        return (self.root / "blobs" / algorithm / hex_value).read_bytes()

    def json_blob(self, digest: str) -> Any:
        return json.loads(self.blob(digest))

    def index(self) -> Any:
        return json.loads((self.root / "index.json").read_text())

    def attestation_manifest_digest(self) -> str:
        """The cosign ``.att`` manifest ``cosign save`` lists in index.json."""
        (digest,) = (
            m["digest"]
            for m in self.index()["manifests"]
            if m.get("annotations", {}).get("kind") == "dev.cosignproject.cosign/atts"
        )
        return str(digest)


def slsa_layout(version: str) -> Layout:
    return Layout(SLSA_CONTAINER / version / "container_workflow_dispatch")


def slsa_image_digest(version: str) -> str:
    return (SLSA_CONTAINER / version / "container_workflow_dispatch.digest").read_text().strip()
