"""Answers whose size a registry's content decides fit the server's 4 MiB send limit: a page
of SearchArtifactsByPackage or ListReferrers ends early by bytes (with a page token), and an item
too large alone (one package, one artifact) is cut by fitting.cut_to_fit's rule and says so in
``xregistry-cut`` trailing metadata. Before: RESOURCE_EXHAUSTED, and nothing could be read.

Rows are stored the way the indexer stores them (SBOM packages of up to 64 KiB strings each),
then read through `xregistry serve`'s real server by a client that would take any size."""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TypeAlias

import grpc
import grpc.aio
import pytest

from catalog.api.fitting import CUT_METADATA, cut_to_fit
from catalog.api.paging import PAGE_BYTES
from catalog.api.server import MAX_SEND
from catalog.api.v1 import catalog_pb2 as pb
from catalog.api.v1 import catalog_pb2_grpc
from catalog.app.config import ServeConfig
from catalog.daemon import Server
from catalog.oci import mediatypes as mt
from catalog.oci.digest import Digest
from catalog.oci.manifest import Manifest, parse_manifest
from catalog.store import content, queries
from catalog.store.db import make_engine, session_factory, upgrade
from catalog.store.models import Sbom, SbomPackage, Signature

TEXT = 60 * 1024  # under the 64 KiB a string from an SBOM may have
PACKAGES = 40  # per artifact: 3 artifacts of 40 packages of 60 KiB, about 7 MiB of matches
LICENSES = 100  # of one package: 6 MiB alone, more than any answer can carry
SIGNATURES = 80  # on one artifact, identities of 60 KiB: 4.7 MiB
Stub: TypeAlias = "catalog_pb2_grpc.CatalogServiceAsyncStub"  # a name of the type stubs only


def image(n: int, subject: Manifest | None = None) -> Manifest:
    doc: dict[str, object] = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": {"mediaType": mt.OCI_CONFIG, "digest": str(Digest.of(b"c%d" % n)), "size": 3},
        "layers": [],
    }
    if subject is not None:
        doc["subject"] = {"mediaType": subject.media_type, "digest": str(subject.digest), "size": 1}
        doc["artifactType"] = "application/spdx+json"
    return parse_manifest(json.dumps(doc).encode())


def purl(artifact: int, package: int) -> str:
    return f"pkg:generic/big@{artifact}.{package}-" + "v" * TEXT


@pytest.fixture
async def served(
    tmp_path: Path,
) -> AsyncIterator[tuple[Stub, list[str]]]:
    service = Server(
        ServeConfig(database=f"sqlite:///{tmp_path / 'catalog.db'}", listen="127.0.0.1:0")
    )
    await service.start()
    subjects = [image(n) for n in range(3)]
    sboms = [image(10 + n, subject=s) for n, s in enumerate(subjects)]
    signature = image(20, subject=subjects[0])
    with service.sessions.begin() as session:
        content.add_manifests(session, [*subjects, *sboms, signature])
        links = [
            content.Link(str(s.digest), str(m.digest), "sbom", "referrers-api", None)
            for s, m in zip(subjects, sboms, strict=True)
        ]
        links.append(
            content.Link(
                str(subjects[0].digest), str(signature.digest), "signature", "referrers-api", None
            )
        )
        content.add_attachments(session, links)
        for n, sbom in enumerate(sboms):
            row = Sbom(
                attachment_digest=str(sbom.digest),
                layer_digest=str(Digest.of(b"sbom%d" % n)),
                format="spdx",
                package_count=PACKAGES,
            )
            session.add(row)
            session.flush()
            session.add_all(
                SbomPackage(sbom_id=row.id, name="big", purl=purl(n, p), licenses=["MIT"])
                for p in range(PACKAGES)
            )
            if n == 1:  # one package no answer can carry whole
                session.add(
                    SbomPackage(
                        sbom_id=row.id,
                        name="big",
                        purl="pkg:generic/big@huge",
                        licenses=[f"L{i:03d}-" + "x" * TEXT for i in range(LICENSES)],
                    )
                )
        session.add_all(
            Signature(
                attachment_digest=str(signature.digest),
                layer_digest=str(Digest.of(b"sig%d" % i)),
                format="cosign",
                identity=f"{i:03d}-" + "i" * TEXT,
                layer_media_type="application/vnd.dev.cosign.simplesigning.v1+json",
                layer=b"{}",
            )
            for i in range(SIGNATURES)
        )
    try:
        async with grpc.aio.insecure_channel(
            f"127.0.0.1:{service.port}", options=[("grpc.max_receive_message_length", -1)]
        ) as channel:
            yield catalog_pb2_grpc.CatalogServiceStub(channel), [str(s.digest) for s in subjects]
    finally:
        await service.stop()


async def test_a_search_past_the_send_limit_comes_in_pages_under_it(
    served: tuple[Stub, list[str]],
) -> None:
    stub, _ = served
    started = time.monotonic()
    seen: list[str] = []
    sizes: list[int] = []
    cuts: list[str] = []
    token = ""
    while True:
        call = stub.SearchArtifactsByPackage(
            pb.SearchArtifactsByPackageRequest(package_name="big", page_size=1000, page_token=token)
        )
        answer = await call
        sizes.append(answer.ByteSize())
        cuts += [str(v) for k, v in await call.trailing_metadata() or () if k == CUT_METADATA]
        seen += [m.package.purl for m in answer.matches]
        token = answer.next_page_token
        if not token:
            break
    took = time.monotonic() - started
    print(
        f"measured: {len(sizes)} pages in {took:.2f} s, bytes {sizes}, "
        f"{sum(sizes)} in all (one page would be {sum(sizes) + len(sizes)})"
    )
    wanted = [purl(n, p) for n in range(3) for p in range(PACKAGES)] + ["pkg:generic/big@huge"]
    assert sorted(seen) == sorted(wanted)  # every match, each once
    assert len(seen) == len(set(seen))
    assert sum(sizes) > MAX_SEND  # one page could not have been sent
    assert all(size <= PAGE_BYTES + 8192 < MAX_SEND for size in sizes)
    # The package with 6 MiB of licenses came alone on its page, its licenses cut, and said so.
    assert len(cuts) == 1
    assert re.fullmatch(rf"matches\[0\]\.package\.licenses: \d+ of {LICENSES} kept", cuts[0])


async def test_an_artifact_past_the_send_limit_is_cut_and_says_so(
    served: tuple[Stub, list[str]],
) -> None:
    stub, subjects = served
    call = stub.GetArtifact(pb.GetArtifactRequest(name=f"artifacts/{subjects[0]}"))
    answer = await call
    metadata = dict(await call.trailing_metadata() or ())
    kept = len(answer.artifact.signatures)
    print(f"measured: GetArtifact {answer.ByteSize()} bytes, {kept} of {SIGNATURES} signatures")
    assert answer.ByteSize() <= PAGE_BYTES
    assert 0 < kept < SIGNATURES
    # The first ones are kept, in order; the rest of the artifact is whole.
    assert [s.identity[:3] for s in answer.artifact.signatures] == [f"{i:03d}" for i in range(kept)]
    assert len(answer.artifact.attachments) == 2
    assert metadata[CUT_METADATA] == f"signatures: {kept} of {SIGNATURES} kept"
    # An artifact that fits is not cut and carries no such metadata.
    call = stub.GetArtifact(pb.GetArtifactRequest(name=f"artifacts/{subjects[1]}"))
    await call
    assert CUT_METADATA not in dict(await call.trailing_metadata() or ())


def test_a_referrers_page_ends_at_its_byte_budget(tmp_path: Path) -> None:
    """The store's half: a page under a budget ends at the item that would pass it, and the
    next page starts right after it, so every item comes once."""
    engine = make_engine(f"sqlite:///{tmp_path / 'c.db'}")
    upgrade(engine)
    sessions = session_factory(engine)
    subject = image(0)
    attached = [image(100 + n, subject=subject) for n in range(50)]
    with sessions.begin() as session:
        content.add_manifests(session, [subject, *attached])
        content.add_attachments(
            session,
            [
                content.Link(str(subject.digest), str(m.digest), "sbom", "referrers-api", "t" * 255)
                for m in attached
            ],
        )
    budget = queries.Budget(1000, lambda view: 300)  # three items a page
    found: list[str] = []
    pages = 0
    after: queries.Key | None = None
    with sessions() as session:
        while True:
            page = queries.list_referrers(session, str(subject.digest), None, 1000, after, budget)
            assert len(page.items) <= 3
            found += [a.digest for a in page.items]
            pages += 1
            if page.next_after is None:
                break
            after = page.next_after
    engine.dispose()
    assert sorted(found) == found == sorted(str(m.digest) for m in attached)
    assert pages == 17


def test_the_cut_rule_takes_from_the_largest_list_first() -> None:
    artifact = pb.Artifact(
        digest="sha256:" + "0" * 64,
        locations=[pb.Location(repository=f"r{i}", tags=["t" * 100] * 10) for i in range(10)],
        attachments=[pb.Attachment(digest="sha256:" + "1" * 64)] * 3,
    )
    size = artifact.ByteSize()
    cuts = cut_to_fit(artifact, size - 500)
    assert artifact.ByteSize() <= size - 500
    assert cuts == ["locations: 9 of 10 kept"]  # the largest list, from its end
    assert len(artifact.attachments) == 3
    assert cut_to_fit(artifact, size) == []  # it fits: nothing cut
