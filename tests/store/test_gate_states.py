"""What the warm gate path reads of an image in one statement (``verifications.gate_states``),
on SQLite and PostgreSQL: one image alone or several in one union, tags resolved through the
catalog or not, digests as given."""

from __future__ import annotations

from sqlalchemy import Engine, insert

from catalog.oci.reference import parse_image_reference
from catalog.store import verifications
from catalog.store.schema import attachments, policies, registries, repositories, tags

API = "sha256:" + "a" * 64
WEB = "sha256:" + "b" * 64
LOOSE = "sha256:" + "c" * 64


def test_states_of_tags_digests_and_unknown_images(engine: Engine) -> None:
    with engine.begin() as connection:
        registry = connection.execute(
            insert(registries).values(name="local", host="reg.test").returning(registries.c.id)
        ).scalar_one()
        repository = connection.execute(
            insert(repositories)
            .values(registry_id=registry, name="shop/api")
            .returning(repositories.c.id)
        ).scalar_one()
        connection.execute(
            insert(tags),
            [
                {"repository_id": repository, "name": "1.0", "digest": API},
                {"repository_id": repository, "name": "web", "digest": WEB},
            ],
        )
        connection.execute(
            insert(attachments),
            [
                {
                    "subject_digest": API,
                    "attachment_digest": f"sha256:{n:064x}",
                    "kind": "signature",
                    "scheme": "tag",
                }
                for n in range(3)
            ],
        )
        for version in (1, 2):
            connection.execute(
                insert(policies).values(name="default", version=version, digest="d", source="s")
            )
    references = [
        parse_image_reference(image, "latest")
        for image in (
            "reg.test/shop/api:1.0",  # a tag with three attachments
            "reg.test/shop/api:web",  # a tag with none
            "reg.test/shop/api:gone",  # a tag the catalog does not have
            f"reg.test/shop/api@{LOOSE}",  # a digest, as given
        )
    ]
    with engine.connect() as connection:
        ids = [
            row.id
            for row in connection.execute(
                attachments.select().where(attachments.c.subject_digest == API)
            )
        ]
        expected = [
            (API, 2, (3, max(ids))),
            (WEB, 2, (0, 0)),
            (None, 2, (0, 0)),
            (LOOSE, 2, (0, 0)),
        ]
        alone = [verifications.gate_states(connection, [r], "default")[0] for r in references]
        assert alone == expected
        assert verifications.gate_states(connection, references, "default") == expected
        # Not through the catalog: a tag has no digest yet; no such policy set, no version.
        assert verifications.gate_states(connection, references, "other", resolve_tag=False) == [
            (None, None, (0, 0)),
            (None, None, (0, 0)),
            (None, None, (0, 0)),
            (LOOSE, None, (0, 0)),
        ]
