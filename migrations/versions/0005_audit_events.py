"""audit: who changed what (audit_events), and who asked for each gate decision

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 07:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("principal", sa.String(length=512), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("resource", sa.Text(), nullable=False),
        sa.Column("before", sa.String(length=255), nullable=True),
        sa.Column("after", sa.String(length=255), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    for column in ("occurred_at", "principal", "kind"):
        op.create_index(op.f(f"ix_audit_events_{column}"), "audit_events", [column])
    # Decisions made before this revision have no recorded asker: the column stays NULL for them.
    # Added in place (no batch rebuild): SQLite adds a nullable column without copying the table.
    op.add_column("decisions", sa.Column("principal", sa.String(length=512), nullable=True))


def downgrade() -> None:
    op.drop_column("decisions", "principal")
    op.drop_table("audit_events")
