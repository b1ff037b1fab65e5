"""sbom_packages.sbom_id: neither a foreign key nor indexed

A crawl's package rows are most of what it writes (200 an SBOM in the bench), and on PostgreSQL
the foreign key's check ran once a row: a query of ``sboms`` through SPI, its executor started
and ended for each (42% of the instructions of a package row's ``COPY``, callgrind); the index
on sbom_id was 9% more and 15% of the WAL. Neither served anything: no query finds packages by
their SBOM (look-ups go by the package keys, then join ``sboms`` on its primary key), nothing
deletes an SBOM (what the cascade was for), and package rows are only written in the
transaction that writes their SBOM's row, with the id that insert returned.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 06:50:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_FOREIGN_KEY = "fk_sbom_packages_sbom_id_sboms"
_INDEX = "ix_sbom_packages_sbom_id"


def upgrade() -> None:
    # The index first: SQLite's batch copies the table, and would build it again.
    op.drop_index(_INDEX, table_name="sbom_packages")
    with op.batch_alter_table("sbom_packages") as batch:
        batch.drop_constraint(_FOREIGN_KEY, type_="foreignkey")


def downgrade() -> None:
    with op.batch_alter_table("sbom_packages") as batch:
        batch.create_foreign_key(_FOREIGN_KEY, "sboms", ["sbom_id"], ["id"], ondelete="CASCADE")
    op.create_index(_INDEX, "sbom_packages", ["sbom_id"])
