"""Rows the indexer inserts many to a statement get their own ids: new tags their events,
SBOMs their packages, attestations their provenance (ids are matched by each row's unique key,
not by the order a driver returns them in; on both databases); what a crawl read ahead or
recorded itself (links, a repository's absence, its manifests) is not asked again."""

from __future__ import annotations

import json

from sqlalchemy import Engine, insert, select
from sqlalchemy.orm import Session, sessionmaker

from catalog.formats.records import ProvenanceRecord, StatementRecord, Subject
from catalog.oci import mediatypes as mt
from catalog.oci.digest import Digest
from catalog.oci.manifest import Manifest as OciManifest
from catalog.oci.manifest import parse_manifest
from catalog.store import content, documents
from catalog.store.documents import AttestationDoc, DecodedDocuments, SbomDoc
from catalog.store.models import (
    Attestation,
    IndexChild,
    Manifest,
    ManifestLocation,
    Provenance,
    Sbom,
    SbomPackage,
    Tag,
    TagEvent,
    utcnow,
)
from catalog.store.registries import RegistrySpec, add_repository, create_registry, repository
from tests.harness.statements import recorded_statements


def _digest(text: str) -> str:
    return str(Digest.of(text.encode()))


def test_new_tags_get_their_own_events(sessions: sessionmaker[Session]) -> None:
    wanted = {f"t{n}": _digest(f"image {n}") for n in range(40)}
    with sessions.begin() as s:
        repo = repository(s, create_registry(s, RegistrySpec("r", "example.test")).id, "a/b")
        content.set_tags(s, repo, {}, {"t0": wanted["t0"]})
        existing = content.tags_of(s, repo)
        moved = {**wanted, "t0": _digest("moved")}
        changes = content.set_tags(s, repo, existing, moved)
        assert [c.tag for c in changes] == list(moved)
    with sessions() as s:
        events = s.execute(
            select(Tag.name, Tag.digest, TagEvent.old_digest, TagEvent.new_digest)
            .join(TagEvent, TagEvent.tag_id == Tag.id)
            .order_by(TagEvent.id)
        ).all()
    assert [tuple(e) for e in events] == [
        ("t0", moved["t0"], None, wanted["t0"]),
        ("t0", moved["t0"], wanted["t0"], moved["t0"]),
    ] + [(name, digest, None, digest) for name, digest in moved.items() if name != "t0"]


def _spdx(name: str, count: int) -> bytes:
    packages = [{"name": f"{name}-{i}", "versionInfo": "1"} for i in range(count)]
    return json.dumps({"spdxVersion": "SPDX-2.3", "name": name, "packages": packages}).encode()


def test_sboms_of_one_batch_get_their_own_packages(sessions: sessionmaker[Session]) -> None:
    """Several attachments, two SBOM layers each, recorded in one call: each SBOM row holds
    the count and the packages of its own document."""
    held: dict[str, DecodedDocuments] = {}
    for a in range(6):
        docs = DecodedDocuments()
        for layer in range(2):
            name = f"a{a}l{layer}"
            doc = SbomDoc(_digest(name), _spdx(name, 1 + a + 3 * layer))
            doc.prepare(1024 * 1024)
            docs.sboms.append(doc)
        held[_digest(f"attachment {a}")] = docs
    with sessions.begin() as s:
        assert documents.store_all(s, held) == dict.fromkeys(held, 2)
    with sessions() as s:
        sboms = s.execute(select(Sbom.id, Sbom.name, Sbom.package_count, Sbom.layer_digest))
        for sbom_id, sbom_name, count, layer_digest in sboms:
            assert sbom_name is not None
            assert layer_digest == _digest(sbom_name)
            packages = s.scalars(
                select(SbomPackage.name).where(SbomPackage.sbom_id == sbom_id)
            ).all()
            assert sorted(packages) == sorted(f"{sbom_name}-{i}" for i in range(count))
            assert count == 1 + int(sbom_name[1]) + 3 * int(sbom_name[3])


def test_attestations_of_one_batch_get_their_own_provenance(
    sessions: sessionmaker[Session],
) -> None:
    held: dict[str, DecodedDocuments] = {}
    for a in range(5):
        docs = DecodedDocuments()
        for layer in range(2):
            name = f"a{a}l{layer}"
            statement = StatementRecord(
                "https://in-toto.io/Statement/v1",
                f"https://example.test/{name}",
                (Subject(None, {"sha256": "0" * 64}),),
                {},
                200,
            )
            provenance = None
            if layer == 1 or a % 2:
                provenance = ProvenanceRecord(
                    "https://slsa.dev/provenance/v1", name, None, None, None, None, None, None, ()
                )
            docs.attestations.append(AttestationDoc(_digest(name), statement, provenance))
        held[_digest(f"attachment {a}")] = docs
    with sessions.begin() as s:
        documents.store_all(s, held)
    with sessions() as s:
        rows = s.execute(
            select(Attestation.predicate_type, Provenance.builder_id).outerjoin(
                Provenance, Provenance.attestation_id == Attestation.id
            )
        ).all()
    found = {predicate.rsplit("/", 1)[1]: builder for predicate, builder in rows}
    assert len(rows) == 10
    assert found == {
        f"a{a}l{layer}": f"a{a}l{layer}" if layer == 1 or a % 2 else None
        for a in range(5)
        for layer in range(2)
    }


def test_links_read_ahead_are_not_asked_again(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    """``links_to`` reads the links to tagged manifests ahead of a crawl's recording; given to
    ``add_attachments`` as recorded, they cost it no statement, and the others are inserted
    in one, those recorded before left as they are."""
    subject, old, new = _digest("subject"), _digest("old"), _digest("new")
    links = [
        content.Link(subject, old, "signature", "cosign-tag", None),
        content.Link(subject, new, "sbom", "referrers-api", None),
    ]
    with sessions.begin() as s:
        assert content.add_attachments(s, links[:1]) == 1
    with sessions.begin() as s:
        recorded = content.links_to(s, {old, new})
        assert recorded == {(subject, old)}
        with recorded_statements(engine) as statements:
            assert content.add_attachments(s, links[:1], recorded) == 0
            assert statements == []
            assert content.add_attachments(s, links, recorded) == 1
            assert len(statements) == 1  # the other link inserted, none asked first
            assert content.add_attachments(s, links) == 0  # recorded: left as they are
            assert len(statements) == 2
    with sessions() as s:
        assert content.links_to(s, {old, new}) == {(subject, old), (subject, new)}


def test_manifests_recorded_before_are_left_in_the_inserts_statement(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    """``add_manifests`` asks nothing first: one insert leaves out the manifests recorded
    before, and only a new index's children follow it (a recorded index's are not added
    again)."""
    first, second = _manifest({"n": 1}), _manifest({"n": 2})
    recorded_index = _index(first)
    with sessions.begin() as s:
        assert content.add_manifests(s, [first, recorded_index]) == 2
    new_index = _index(first, second)
    with sessions.begin() as s:
        with recorded_statements(engine) as statements:
            assert content.add_manifests(s, [first, recorded_index, new_index, second]) == 2
        assert [statement.split()[2] for statement in statements] == [
            "manifests",
            "index_children",
        ]
        children = s.execute(select(IndexChild.parent_digest, IndexChild.child_digest))
        assert sorted(children.all()) == sorted(
            [
                (str(recorded_index.digest), str(first.digest)),
                (str(new_index.digest), str(first.digest)),
                (str(new_index.digest), str(second.digest)),
            ]
        )


def _manifest(annotations: dict[str, object]) -> OciManifest:
    return parse_manifest(
        json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": mt.OCI_MANIFEST,
                "config": {"mediaType": mt.OCI_CONFIG, "digest": _digest("config"), "size": 1},
                "layers": [],
                "annotations": {key: str(value) for key, value in annotations.items()},
            }
        ).encode()
    )


def _index(*children: OciManifest) -> OciManifest:
    return parse_manifest(
        json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": mt.OCI_INDEX,
                "manifests": [
                    {"mediaType": c.media_type, "digest": str(c.digest), "size": c.size}
                    for c in children
                ],
            }
        ).encode()
    )


def test_a_repository_read_absent_is_added_once(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        registry = create_registry(s, RegistrySpec("r", "example.test"))
        added = add_repository(s, registry.id, "a/b")
        assert added is not None
        assert add_repository(s, registry.id, "a/b") is None  # created since: the caller's ORM
        assert repository(s, registry.id, "a/b").id == added.id


def test_locations_of_digests_known_recorded_are_not_asked(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    """``sync_locations`` asks which unlocated digests have a manifest, except those the
    caller knows recorded (a crawl's own manifests): a digest neither recorded nor known
    gets no location."""
    with sessions.begin() as s:
        repo = repository(s, create_registry(s, RegistrySpec("r", "example.test")).id, "a/b")
        image = _digest("image")
        s.execute(
            insert(Manifest).values(
                digest=image, media_type="m", size=1, raw=b"{}", first_seen=utcnow()
            )
        )
        with recorded_statements(engine) as statements:
            assert content.sync_locations(s, repo, {image}, {image}) == (1, 0)
            assert not any("FROM manifests" in statement for statement in statements)
            assert content.sync_locations(s, repo, {image, _digest("absent")}) == (0, 0)
            assert any("FROM manifests" in statement for statement in statements)


def test_locations_read_ahead_are_not_asked_again(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    """A crawl reads its repositories' locations ahead, many in one statement
    (``locations_of``): ``sync_locations`` given them asks none, and syncs as it would have."""
    images = [_digest(f"image {n}") for n in range(3)]
    with sessions.begin() as s:
        registry = create_registry(s, RegistrySpec("r", "example.test"))
        one, two = repository(s, registry.id, "a/one"), repository(s, registry.id, "a/two")
        s.execute(
            insert(Manifest),
            [
                {"digest": d, "media_type": "m", "size": 1, "raw": b"{}", "first_seen": utcnow()}
                for d in images
            ],
        )
        content.sync_locations(s, one, {images[0], images[1]})
        content.sync_locations(s, two, {images[2]})
    with sessions.begin() as s:
        with recorded_statements(engine) as statements:
            ahead = content.locations_of(s, [one.id, two.id, two.id + 1])
            assert len(statements) == 1  # all three repositories (the last has none)
            assert {repo: set(rows) for repo, rows in ahead.items()} == {
                one.id: {images[0], images[1]},
                two.id: {images[2]},
            }
            present, recorded = {images[1], images[2]}, {images[2]}
            assert content.sync_locations(s, one, present, recorded, ahead[one.id]) == (1, 1)
            asked = [statement for statement in statements[1:] if "SELECT" in statement]
            assert asked == []  # neither the locations nor, for a manifest, ``manifests``
        live = s.execute(
            select(ManifestLocation.digest).where(
                ManifestLocation.repository_id == one.id, ManifestLocation.gone_at.is_(None)
            )
        )
        assert set(live.scalars()) == {images[1], images[2]}


def test_a_repository_recorded_is_live_again(sessions: sessionmaker[Session]) -> None:
    """Another writer may mark a repository gone after a crawl read its row ahead: the crawl
    that found it and recorded it leaves it live (``repository()``, the ORM path, did)."""
    with sessions.begin() as s:
        repo = repository(s, create_registry(s, RegistrySpec("r", "example.test")).id, "a/b")
        repo.gone_at = utcnow()
    with sessions.begin() as s:
        content.mark_indexed(s, [repo.id])
    with sessions() as s:
        assert s.get(type(repo), repo.id).gone_at is None  # type: ignore[union-attr]


def test_a_location_another_crawl_recorded_since_the_read_ahead_is_no_failure(
    sessions: sessionmaker[Session],
) -> None:
    """Locations are read ahead outside the writer's transaction: another process's crawl of
    the same repository (a second server replica, a live index) may record one in between.
    Recording it again is no conflict that fails the repository; it stays one row."""
    image = _digest("image")
    with sessions.begin() as s:
        repo = repository(s, create_registry(s, RegistrySpec("r", "example.test")).id, "a/b")
        s.execute(
            insert(Manifest).values(
                digest=image, media_type="m", size=1, raw=b"{}", first_seen=utcnow()
            )
        )
    with sessions() as s:
        ahead = content.locations_of(s, [repo.id]).get(repo.id, {})
    assert ahead == {}
    with sessions.begin() as other:  # the other crawl, committed after the read-ahead
        assert content.sync_locations(other, repo, {image}, {image}) == (1, 0)
    with sessions.begin() as s:
        content.sync_locations(s, repo, {image}, {image}, ahead)
    with sessions() as s:
        rows = s.execute(select(ManifestLocation.digest, ManifestLocation.gone_at)).all()
        assert [tuple(row) for row in rows] == [(image, None)]


def test_the_read_aheads_statements_do_not_grow_with_what_they_ask(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    """A crawl reads ahead the state of 16 repositories at a time (hundreds of digests): on
    PostgreSQL each read is one statement whose text is the same however many it asks (one
    array parameter; an ``IN`` list cost the client a parameter a value, and psycopg a parse of
    a new text), and answers as before on both databases."""
    with sessions.begin() as s:
        registry = create_registry(s, RegistrySpec("r", "example.test"))
        row = repository(s, registry.id, "a/b")
        known = _manifest({"n": "known"})
        content.add_manifests(s, [known])
        row_id = row.id
    texts: list[list[str]] = []
    for count in (1, 3):
        digests = [_digest(f"asked-{n}") for n in range(count)] + [str(known.digest)]
        names = [f"a/{n}" for n in range(count)] + ["a/b"]
        with sessions() as s, recorded_statements(engine) as statements:
            assert content.known_manifests(s, digests) == {str(known.digest)}
            assert set(content.repository_states(s, registry.id, names)) == {"a/b"}
            assert content.links_to(s, digests) == set()
            assert content.locations_of(s, [row_id, row_id + 1 + count]) == {}
            assert documents.recorded_or_refused(s, digests) == (set(), {})
        texts.append(statements)
    if engine.dialect.name == "postgresql":
        assert texts[0] == texts[1]
    else:  # SQLite: an IN list, a parameter a value
        assert texts[0] != texts[1]
