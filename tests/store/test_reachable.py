"""What a repository's tags reach (``content.reachable``: one recursive statement on SQLite, one
for two levels on PostgreSQL): through index children and attachments, at any depth, in either
order, around a cycle, and nothing beyond; and each root's alone, for many roots at once
(``content.reachable_by_root``)."""

from __future__ import annotations

from sqlalchemy import Engine, insert
from sqlalchemy.orm import Session, sessionmaker

from catalog.store import content
from catalog.store.models import Attachment, IndexChild, Manifest, utcnow
from tests.harness.statements import recorded_statements


def _graph(sessions: sessionmaker[Session]) -> None:
    children = [("index", "image"), ("signed-index", "child-of-signed")]
    attachments = [
        ("image", "signature"),
        ("signature", "signed-index"),  # an index attached: its children follow
        ("child-of-signed", "cycle-a"),
        ("cycle-a", "cycle-b"),
        ("cycle-b", "cycle-a"),
        ("elsewhere", "not-reached"),
        ("not-reached", "image"),  # reaches in, not out
    ]
    with sessions.begin() as s:
        s.execute(  # the indexes themselves: children name their parent's row
            insert(Manifest),
            [
                {"digest": p, "media_type": "m", "size": 1, "raw": b"{}", "first_seen": utcnow()}
                for p, _ in children
            ],
        )
        s.execute(
            insert(IndexChild),
            [
                {"parent_digest": p, "child_digest": c, "position": 0, "media_type": "m"}
                for p, c in children
            ],
        )
        s.execute(
            insert(Attachment),
            [
                {
                    "subject_digest": subject,
                    "attachment_digest": attachment,
                    "kind": "other",
                    "scheme": "referrers-api",
                    "first_seen": utcnow(),
                }
                for subject, attachment in attachments
            ],
        )


def test_reachable_follows_children_and_attachments_at_any_depth(
    sessions: sessionmaker[Session],
) -> None:
    _graph(sessions)
    with sessions() as s:
        assert content.reachable(s, {"index", "unknown"}) == {
            "index",
            "unknown",
            "image",
            "signature",
            "signed-index",
            "child-of-signed",
            "cycle-a",
            "cycle-b",
        }
        assert content.reachable(s, {"cycle-b"}) == {"cycle-a", "cycle-b"}
        assert content.reachable(s, set()) == set()
        many = {f"root-{n}" for n in range(1200)} | {"child-of-signed"}  # several chunks
        assert content.reachable(s, many) == many | {"cycle-a", "cycle-b"}


def test_each_root_reaches_its_own(engine: Engine, sessions: sessionmaker[Session]) -> None:
    """A crawl asks this once for the unchanged repositories of a group: each root's digests
    alone (one another root reaches is not its), in one pass for all."""
    _graph(sessions)
    roots = {"elsewhere", "signature", "cycle-b", "unknown"}
    with sessions() as s, recorded_statements(engine) as statements:
        found = content.reachable_by_root(s, roots)
    beyond_image = {"signature", "signed-index", "child-of-signed", "cycle-a", "cycle-b"}
    assert found == {
        "elsewhere": {"elsewhere", "not-reached", "image"} | beyond_image,
        "signature": beyond_image,
        "cycle-b": {"cycle-a", "cycle-b"},
        "unknown": {"unknown"},
    }
    # SQLite: one recursive statement; PostgreSQL: one for two levels, eight deep here.
    assert len(statements) == (1 if engine.dialect.name == "sqlite" else 4)
    with sessions() as s:
        assert content.reachable_by_root(s, set()) == {}


def test_an_image_its_signature_and_sbom_take_one_statement(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    """Every repository of every re-index asks this: an image's attachments are one step from
    it, and the step after them finds none. PostgreSQL took a statement a level (two)."""
    with sessions.begin() as s:
        s.execute(
            insert(Attachment),
            [
                {
                    "subject_digest": "image",
                    "attachment_digest": attachment,
                    "kind": "other",
                    "scheme": "referrers-api",
                    "first_seen": utcnow(),
                }
                for attachment in ("signature", "sbom")
            ],
        )
    with sessions() as s, recorded_statements(engine) as statements:
        assert content.reachable(s, {"image", "signature"}) == {"image", "signature", "sbom"}
    assert len(statements) == 1
