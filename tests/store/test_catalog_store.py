"""Recording and querying the catalog, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from catalog.errors import AlreadyExists, InvalidArgument, NotFound
from catalog.oci import mediatypes as mt
from catalog.oci.digest import Digest
from catalog.oci.manifest import Manifest, parse_manifest
from catalog.oci.reference import parse_image_reference
from catalog.store import content, queries
from catalog.store.models import Attachment, Sbom, SbomPackage
from catalog.store.registries import (
    RegistrySpec,
    create_registry,
    delete_registry,
    get_registry,
    repository,
)


def image(n: int, subject: Manifest | None = None) -> Manifest:
    doc: dict[str, object] = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": {"mediaType": mt.OCI_CONFIG, "digest": str(Digest.of(b"c%d" % n)), "size": 3},
        "layers": [],
        "annotations": {"n": str(n)},
    }
    if subject is not None:
        doc["subject"] = {"mediaType": subject.media_type, "digest": str(subject.digest), "size": 1}
        doc["artifactType"] = "application/spdx+json"
    return parse_manifest(json.dumps(doc).encode())


def index(*children: Manifest) -> Manifest:
    doc = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_INDEX,
        "manifests": [
            {
                "mediaType": c.media_type,
                "digest": str(c.digest),
                "size": c.size,
                "platform": {"os": "linux", "architecture": f"arch{i}"},
            }
            for i, c in enumerate(children)
        ],
    }
    return parse_manifest(json.dumps(doc).encode())


def test_registries_are_named_uniquely(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        create_registry(s, RegistrySpec("local", "localhost:5000"))
    with sessions.begin() as s, pytest.raises(AlreadyExists):
        create_registry(s, RegistrySpec("local", "other:5000"))
    with sessions.begin() as s, pytest.raises(InvalidArgument, match="invalid registry name"):
        create_registry(s, RegistrySpec("Bad_Name", "x"))
    with sessions.begin() as s:
        delete_registry(s, "local")
    with sessions() as s, pytest.raises(NotFound):
        get_registry(s, "local")


def test_tags_locations_history_and_artifact_view(sessions: sessionmaker[Session]) -> None:
    a, b = image(1), image(2)
    idx = index(a, b)
    sbom = image(3, subject=idx)
    with sessions.begin() as s:
        reg = create_registry(s, RegistrySpec("local", "localhost:5000"))
        repo = repository(s, reg.id, "acme/api")
        assert content.add_manifests(s, [a, b, idx, sbom, a]) == 4
        assert content.add_manifests(s, [a]) == 0
        link = content.Link(
            str(idx.digest), str(sbom.digest), "sbom", "fallback-tag", "application/spdx+json"
        )
        assert content.add_attachments(s, [link, link]) == 1
        assert content.add_attachments(s, [link]) == 0
        assert content.set_tag(s, repo, None, "v1", str(idx.digest)) is not None
        live = content.reachable(s, {str(idx.digest)})
        assert live == {str(m.digest) for m in (a, b, idx, sbom)}
        assert content.sync_locations(s, repo, live) == (4, 0)

    with sessions() as s:
        ref = parse_image_reference("localhost:5000/acme/api:v1")
        assert queries.resolve_reference(s, ref) == str(idx.digest)
        view = queries.get_artifact(s, str(idx.digest))
        assert [c.architecture for c in view.children] == ["arch0", "arch1"]
        assert [(loc.registry, loc.repository, loc.tags) for loc in view.locations] == [
            ("local", "acme/api", ["v1"])
        ]
        assert [(x.kind, x.scheme) for x in view.attachments] == [("sbom", "fallback-tag")]
        child = queries.get_artifact(s, str(a.digest))
        assert child.platform is not None
        assert child.platform.architecture == "arch0"
        with pytest.raises(NotFound, match="no artifact"):
            queries.get_artifact(s, str(Digest.of(b"nothing")))
        with pytest.raises(InvalidArgument):
            queries.get_artifact(s, "sha256:nothex")

    # Retag v1 to another image, then remove it: two events, and the index's locations go.
    with sessions.begin() as s:
        reg = get_registry(s, "local")
        repo = repository(s, reg.id, "acme/api")
        tags = content.tags_of(s, repo)
        change = content.set_tag(s, repo, tags["v1"], "v1", str(a.digest))
        assert change == content.TagChange("v1", str(idx.digest), str(a.digest))
        assert content.set_tag(s, repo, tags["v1"], "v1", str(a.digest)) is None
        assert content.sync_locations(s, repo, content.reachable(s, {str(a.digest)})) == (0, 3)
        content.mark_tag_gone(s, tags["v1"])
    with sessions() as s:
        history = queries.tag_history(s, "local", "acme/api", "v1", 10, None)
        assert [(e.old_digest, e.new_digest) for e in history.items] == [  # newest first
            (str(a.digest), None),
            (str(idx.digest), str(a.digest)),
            (None, str(idx.digest)),
        ]
        first = queries.tag_history(s, "local", "acme/api", "v1", 2, None)
        assert [e.new_digest for e in first.items] == [None, str(a.digest)]
        assert first.next_after is not None
        rest = queries.tag_history(s, "local", "acme/api", "v1", 2, first.next_after)
        assert [e.new_digest for e in rest.items] == [str(idx.digest)]
        assert rest.next_after is None
        assert queries.list_tags(s, "local", "acme/api", False, 10, None).items == []
        assert len(queries.list_tags(s, "local", "acme/api", True, 10, None).items) == 1
        gone = {loc.gone for loc in queries.get_artifact(s, str(idx.digest)).locations}
        assert gone == {True}
        with pytest.raises(NotFound):
            queries.resolve_reference(s, parse_image_reference("localhost:5000/acme/api:v1"))


def test_search_by_purl_and_name(sessions: sessionmaker[Session]) -> None:
    subject = image(10)
    with sessions.begin() as s:
        reg = create_registry(s, RegistrySpec("local", "localhost:5000"))
        repo = repository(s, reg.id, "shop/api")
        content.add_manifests(s, [subject])
        content.set_tag(s, repo, None, "1.4", str(subject.digest))
        content.sync_locations(s, repo, {str(subject.digest)})
        s.add(
            Attachment(
                subject_digest=str(subject.digest),
                attachment_digest="sha256:" + "b" * 64,
                kind="sbom",
                scheme="referrers-api",
                artifact_type=None,
            )
        )
        sbom = Sbom(
            attachment_digest="sha256:" + "b" * 64,
            layer_digest="sha256:" + "c" * 64,
            format="spdx",
            package_count=3,
        )
        s.add(sbom)
        s.flush()
        for version in ("2.14.1", "2.17.0", "2.14.1"):
            s.add(
                SbomPackage(
                    sbom_id=sbom.id,
                    purl=f"pkg:maven/org.apache.logging.log4j/log4j-core@{version}",
                    purl_base="pkg:maven/org.apache.logging.log4j/log4j-core",
                    type="maven",
                    namespace="org.apache.logging.log4j",
                    name="log4j-core",
                    version=version,
                    licenses=["Apache-2.0"],
                )
            )
    with sessions() as s:
        hit = queries.search_packages(
            s, purl="pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1?type=jar"
        )
        assert [m.package.version for m in hit.items] == ["2.14.1", "2.14.1"]
        assert hit.items[0].artifact_digest == str(subject.digest)
        assert hit.items[0].locations[0].tags == ["1.4"]
        assert (
            len(
                queries.search_packages(
                    s, purl="pkg:maven/org.apache.logging.log4j/log4j-core"
                ).items
            )
            == 3
        )
        assert len(queries.search_packages(s, name="log4j-core", version="2.17.0").items) == 1
        paged = queries.search_packages(s, name="log4j-core", size=2)
        assert paged.next_after is not None
        assert (
            len(queries.search_packages(s, name="log4j-core", size=2, after=paged.next_after).items)
            == 1
        )
        with pytest.raises(InvalidArgument, match="invalid package URL"):
            queries.search_packages(s, purl="log4j")
        with pytest.raises(InvalidArgument):
            queries.search_packages(s)


def test_lists_are_in_the_documented_order_across_pages(sessions: sessionmaker[Session]) -> None:
    """Tags by tag, referrers by digest, package matches by artifact digest: whatever order the
    rows were written in, and paged by keyset one row at a time."""
    subjects = [image(n) for n in range(3)]
    sboms = [image(10 + n, subject=s) for n, s in enumerate(subjects)]
    extra = [image(20 + n, subject=subjects[0]) for n in range(3)]
    with sessions.begin() as s:
        repo = repository(s, create_registry(s, RegistrySpec("local", "localhost:5000")).id, "a")
        content.add_manifests(s, [*subjects, *sboms, *extra])
        for tag, subject in zip(("zeta", "alpha", "mid"), subjects, strict=True):
            content.set_tag(s, repo, None, tag, str(subject.digest))
        content.add_attachments(
            s,
            [
                content.Link(str(subjects[0].digest), str(m.digest), "sbom", "referrers-api", None)
                for m in reversed(extra)
            ],
        )
        for subject, sbom in zip(reversed(subjects), reversed(sboms), strict=True):
            content.add_attachments(
                s,
                [
                    content.Link(
                        str(subject.digest), str(sbom.digest), "sbom", "referrers-api", None
                    )
                ],
            )
            layer = str(Digest.of(str(sbom.digest).encode()))
            row = Sbom(
                attachment_digest=str(sbom.digest),
                layer_digest=layer,
                format="spdx",
                package_count=1,
            )
            s.add(row)
            s.flush()
            s.add(SbomPackage(sbom_id=row.id, name="left-pad", version="1", licenses=[]))

    def walk(list_page: Callable[[queries.Key | None], queries.Page[Any]]) -> list[Any]:
        found: list[Any] = []
        after: queries.Key | None = None
        while True:
            page = list_page(after)
            assert len(page.items) <= 1
            found += page.items
            if page.next_after is None:
                return found
            after = page.next_after

    with sessions() as s:
        tags = walk(lambda after: queries.list_tags(s, "local", "a", False, 1, after))
        assert [t.name for t in tags] == ["alpha", "mid", "zeta"]
        referrers = walk(
            lambda after: queries.list_referrers(s, str(subjects[0].digest), None, 1, after)
        )
        wanted = sorted(str(m.digest) for m in [*extra, sboms[0]])
        assert [r.digest for r in referrers] == wanted
        matches = walk(
            lambda after: queries.search_packages(s, name="left-pad", size=1, after=after)
        )
        artifacts = [m.artifact_digest for m in matches]
        assert artifacts == sorted(str(m.digest) for m in subjects)
