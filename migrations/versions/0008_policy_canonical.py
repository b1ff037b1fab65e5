"""policies.canonical: a policy set's canonical JSON as validated when it was applied

The gate compiles a stored set from it (its SHA-256 is the set's digest) without parsing and
validating the source again: a command checking one image starts without pydantic or YAML.
Sets applied before this revision have none and are parsed from their source, as before.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 15:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("policies", sa.Column("canonical", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("policies", "canonical")
