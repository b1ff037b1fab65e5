"""admission: where a gate decision was asked for by a Kubernetes admission review

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_COLUMNS = (
    ("namespace", sa.String(length=253)),
    ("object_ref", sa.String(length=512)),
    ("operation", sa.String(length=16)),
    ("requester", sa.String(length=512)),
    ("dry_run", sa.Boolean()),
)


def upgrade() -> None:
    # Nullable, added in place (no batch rebuild): decisions asked outside admission, and those
    # made before this revision, have none.
    for name, type_ in _COLUMNS:
        op.add_column("decisions", sa.Column(name, type_, nullable=True))


def downgrade() -> None:
    for name, _ in reversed(_COLUMNS):
        op.drop_column("decisions", name)
