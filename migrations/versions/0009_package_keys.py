"""sbom_packages.purl_key, name_key: package look-ups by one 64-bit key instead of two strings

Each key packs the hashes of the purl base (or name) and of the version
(``catalog.store.package_keys``); the two indexes on (purl_base, version) and (name, version)
become indexes on the keys: half the bytes an entry, less of a crawl's time spent writing index
pages. Existing rows get their keys in batches (a catalog may hold millions), then the indexes
are built once.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 00:15:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from catalog.store.package_keys import package_key

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_BATCH = 10_000


def upgrade() -> None:
    op.add_column("sbom_packages", sa.Column("purl_key", sa.BigInteger(), nullable=True))
    op.add_column("sbom_packages", sa.Column("name_key", sa.BigInteger(), nullable=True))
    # Dropped first: each row's update would write entries into them too (PostgreSQL).
    op.drop_index("ix_sbom_packages_purl_base_version", table_name="sbom_packages")
    op.drop_index("ix_sbom_packages_name_version", table_name="sbom_packages")
    _fill_keys()
    op.create_index("ix_sbom_packages_purl_key", "sbom_packages", ["purl_key"])
    op.create_index("ix_sbom_packages_name_key", "sbom_packages", ["name_key"])


def _fill_keys() -> None:
    """Every row's keys, by id a batch at a time: no statement holds the whole table."""
    connection = op.get_bind()
    read = sa.text(
        "SELECT id, purl_base, name, version FROM sbom_packages WHERE id > :after"
        " ORDER BY id LIMIT :size"
    )
    write = sa.text(
        "UPDATE sbom_packages SET purl_key = :purl_key, name_key = :name_key WHERE id = :id"
    )
    after = 0
    while rows := connection.execute(read, {"after": after, "size": _BATCH}).all():
        connection.execute(
            write,
            [
                {
                    "id": row.id,
                    "purl_key": package_key(row.purl_base, row.version),
                    "name_key": package_key(row.name, row.version),
                }
                for row in rows
            ],
        )
        after = rows[-1].id


def downgrade() -> None:
    op.drop_index("ix_sbom_packages_name_key", table_name="sbom_packages")
    op.drop_index("ix_sbom_packages_purl_key", table_name="sbom_packages")
    op.create_index("ix_sbom_packages_name_version", "sbom_packages", ["name", "version"])
    op.create_index("ix_sbom_packages_purl_base_version", "sbom_packages", ["purl_base", "version"])
    with op.batch_alter_table("sbom_packages") as batch:
        batch.drop_column("name_key")
        batch.drop_column("purl_key")
