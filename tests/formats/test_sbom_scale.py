"""Large SBOMs: 100,000 packages stream in bounded memory and a few seconds."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from catalog.formats import cosign, intoto, sbom

pytestmark = pytest.mark.timing

PACKAGES = 100_000
MEMORY_BOUND = 64 * 1024 * 1024
TIME_BOUND = 20.0  # seconds; about 6 on the 2-core reference machine, two thirds of it purl parsing


def component(i: int) -> dict[str, Any]:
    group = f"org.example.group{i % 97}"
    name = f"artifact-{i}"
    version = f"{i % 7}.{i % 13}.{i}"
    return {
        "bom-ref": f"pkg:maven/{group}/{name}@{version}?type=jar",
        "type": "library",
        "group": group,
        "name": name,
        "version": version,
        "licenses": [{"license": {"id": "Apache-2.0"}}],
        "hashes": [{"alg": "SHA-256", "content": f"{i:064x}"}],
        "purl": f"pkg:maven/{group}/{name}@{version}?type=jar",
        "properties": [
            {"name": "syft:location:0:path", "value": f"/app/lib/{name}-{version}.jar"},
        ],
    }


def components(count: int) -> Iterator[dict[str, Any]]:
    """``count`` components; every 100th holds two of the following ones nested inside it."""
    i = 0
    while i < count:
        parent = component(i)
        if i % 100 == 0 and i + 2 < count:
            parent["components"] = [component(i + 1), component(i + 2)]
            i += 2
        yield parent
        i += 1


def write_cyclonedx(path: Path, count: int) -> None:
    with path.open("w") as out:
        out.write('{"bomFormat": "CycloneDX", "specVersion": "1.6", "serialNumber": "urn:uuid:1",')
        out.write('"metadata": {"tools": {"components": [{"name": "syft", "version": "1.0"}]},')
        out.write('"component": {"type": "container", "name": "big-image"}}, "components": [')
        for n, item in enumerate(components(count)):
            out.write(("," if n else "") + json.dumps(item))
        out.write("]}")


@pytest.fixture(scope="module")
def big_cyclonedx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sbom") / "big.cdx.json"
    write_cyclonedx(path, PACKAGES)
    return path


# Run in a child process: its peak RSS is the decoder's real footprint, C allocations included,
# and the timing is free of tracemalloc's overhead.
_CHILD = """
import json, resource, sys, time
from catalog.formats import sbom
path, count = sys.argv[1], sys.argv[2] == "count"
started = time.perf_counter()
total = with_purl = 0
with open(path, "rb") as stream:
    record = sbom.decode_sbom(stream)
    if count:
        for package in record.packages:
            total += 1
            with_purl += package.purl is not None
elapsed = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"elapsed": elapsed, "peak": peak, "total": total, "with_purl": with_purl}))
"""


def run_child(path: Path, mode: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path), mode],
        capture_output=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
        timeout=120,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_100k_cyclonedx_streams_in_seconds_and_flat_memory(big_cyclonedx: Path) -> None:
    size = big_cyclonedx.stat().st_size
    assert 30_000_000 < size < 60_000_000
    baseline = run_child(big_cyclonedx, "header")  # imports, and reads the header only
    result = run_child(big_cyclonedx, "count")

    assert (result["total"], result["with_purl"]) == (PACKAGES, PACKAGES)
    extra = result["peak"] - baseline["peak"]
    print(
        f"\n100k CycloneDX, {size / 1e6:.1f} MB: {result['elapsed']:.2f} s,"
        f" peak RSS {extra / 1e6:+.1f} MB over reading the header alone"
    )
    assert result["elapsed"] < TIME_BOUND
    assert extra < MEMORY_BOUND
    assert extra < size / 5  # keeping the 100k records alone would add over 50 MB


def spdx_package(i: int) -> dict[str, Any]:
    return {
        "SPDXID": f"SPDXRef-Package-{i}",
        "name": f"package-{i}",
        "versionInfo": f"{i % 9}.{i % 17}.{i}",
        "supplier": "Organization: Example",
        "downloadLocation": "NOASSERTION",
        "licenseConcluded": "MIT",
        "licenseDeclared": "MIT OR Apache-2.0",
        "checksums": [{"algorithm": "SHA256", "checksumValue": f"{i:064x}"}],
        "externalRefs": [
            {
                "referenceCategory": "SECURITY",
                "referenceType": "cpe23Type",
                "referenceLocator": f"cpe:2.3:a:example:package-{i}:*:*:*:*:*:*:*:*",
            }
        ],
        "primaryPackagePurpose": "LIBRARY",
    }


def test_100k_spdx_packages_traced_memory(tmp_path: Path) -> None:
    # tracemalloc multiplies the cost of every allocation, and packageurl allocates a lot per
    # purl: this document has none, so the streaming itself is traced across 100,000 packages.
    path = tmp_path / "big.spdx.json"
    with path.open("w") as out:
        out.write('{"spdxVersion": "SPDX-2.3", "name": "big", "packages": [')
        out.write(",".join(json.dumps(spdx_package(i)) for i in range(PACKAGES)))
        out.write('], "creationInfo": {"creators": ["Tool: gen-1"]}}')
    size = path.stat().st_size

    tracemalloc.start()
    try:
        with path.open("rb") as stream:
            record = sbom.decode_sbom(stream)
            count = 0
            last = None
            for package in record.packages:
                count += 1
                last = package
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    print(f"\n100k SPDX, {size / 1e6:.1f} MB: peak traced {peak / 1e6:.2f} MB")
    assert count == PACKAGES
    assert record.tools == ("gen-1",)
    assert last is not None
    assert last.licenses == ("MIT", "MIT OR Apache-2.0")
    assert peak < MEMORY_BOUND
    assert peak < size / 20  # flat: not a fraction of the document, a few buffers


def test_first_package_and_canonical_purl(big_cyclonedx: Path) -> None:
    with big_cyclonedx.open("rb") as stream:
        first = next(iter(sbom.decode_sbom(stream).packages))
    # The first top-level component's nested children come before it.
    assert first.name == "artifact-1"
    assert first.purl == "pkg:maven/org.example.group1/artifact-1@1.1.1?type=jar"
    assert first.namespace == "org.example.group1"
    assert first.licenses == ("Apache-2.0",)


def test_large_sbom_attestation_keeps_the_predicate_out_of_memory() -> None:
    # A cosign .att layer whose statement is a 20,000-package SPDX document (about 9 MB).
    packages = [
        {
            "SPDXID": f"SPDXRef-Package-{i}",
            "name": f"pkg-{i}",
            "versionInfo": f"1.{i}",
            "licenseConcluded": "MIT",
            "externalRefs": [
                {
                    "referenceCategory": "PACKAGE-MANAGER",
                    "referenceType": "purl",
                    "referenceLocator": f"pkg:npm/pkg-{i}@1.{i}",
                }
            ],
            "description": "x" * 300,
        }
        for i in range(20_000)
    ]
    statement = {
        "_type": "https://in-toto.io/Statement/v0.1",
        "predicateType": "https://spdx.dev/Document",
        "subject": [{"name": "img", "digest": {"sha256": "ab" * 32}}],
        "predicate": {"spdxVersion": "SPDX-2.3", "name": "img", "packages": packages},
    }
    payload = json.dumps(statement).encode()
    del packages, statement
    assert len(payload) > intoto.INLINE_LIMIT
    envelope = json.dumps(
        {
            "payloadType": intoto.PAYLOAD_TYPE,
            "payload": base64.b64encode(payload).decode(),
            "signatures": [{"keyid": "", "sig": "AAAA"}],
        }
    ).encode()

    tracemalloc.start()
    try:
        record = cosign.decode_cosign_attestation(envelope, {cosign.PREDICATE_TYPE: "x"})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert record.statement is not None
    assert record.statement.predicate is None
    assert record.signed_digests == ("sha256:" + "ab" * 32,)
    # The envelope's text and the decoded payload; a parsed predicate would add over 40 MB.
    print(f"\n{len(envelope) / 1e6:.1f} MB attestation: peak traced {peak / 1e6:.1f} MB")
    assert peak < 2.5 * len(envelope)

    assert record.payload is not None
    document = sbom.decode_sbom_statement(record.payload)
    assert sum(1 for _ in document.packages) == 20_000
