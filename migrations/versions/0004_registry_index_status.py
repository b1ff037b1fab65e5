"""registries: the index status as a column (running, succeeded, failed) with its reason and time

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 07:00:00.000000
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_REGISTRIES = sa.table(
    "registries",
    sa.column("id", sa.Integer()),
    sa.column("last_index_status", sa.Text()),
    sa.column("last_index_errors", sa.Integer()),
)
# What 0003's column held after every finished run (failed runs wrote nothing).
_SENTENCE = re.compile(r"(\d+) repositories, (\d+) errors")


def upgrade() -> None:
    with op.batch_alter_table("registries", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("last_index_started_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("last_index_error", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("last_index_errors", sa.Integer(), nullable=True))
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(_REGISTRIES.c.id, _REGISTRIES.c.last_index_status).where(
            _REGISTRIES.c.last_index_status.is_not(None)
        )
    ).all()
    for registry_id, sentence in rows:
        found = _SENTENCE.fullmatch(sentence)
        connection.execute(
            sa.update(_REGISTRIES)
            .where(_REGISTRIES.c.id == registry_id)
            .values(
                last_index_status="succeeded",
                last_index_errors=int(found.group(2)) if found else None,
            )
        )
    # last_index_status stays a TEXT column: changing its type would make SQLite rebuild the
    # table, and dropping `registries` deletes every repository and tag by cascade.


def downgrade() -> None:
    # Not in batch mode: SQLite (3.35+) drops columns in place; a rebuilt table would cascade.
    for column in ("last_index_errors", "last_index_error", "last_index_started_at"):
        op.drop_column("registries", column)
