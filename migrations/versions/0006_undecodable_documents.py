"""undecodable_documents: attachment manifests whose documents could not be decoded, by digest

A crawl records them so that the next one neither fetches nor decodes them again (a digest is
the same bytes forever); it reports the recorded reason instead.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "undecodable_documents",
        sa.Column("digest", sa.String(length=160), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_undecodable_documents")),
    )


def downgrade() -> None:
    op.drop_table("undecodable_documents")
