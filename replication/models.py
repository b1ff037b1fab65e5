"""Replication's tables: rules, their runs, and the runs' tasks (one image each).

On the catalog's declarative base, so that one metadata (and Alembic) sees every table.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from catalog.oci.copy import COUNTERS
from catalog.store.models import DIGEST, Base, utcnow

# What a task counts, a column each (their meaning: CopyStats); a run's counters are their sums.
TASK_COUNTERS = COUNTERS


class ReplicationRule(Base):
    """A stored replication rule; ``spec`` is its :class:`replication.spec.RuleSpec`."""

    __tablename__ = "replication_rules"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    source_registry: Mapped[str] = mapped_column(String(63), index=True)
    spec: Mapped[dict[str, Any]] = mapped_column()
    origin: Mapped[str] = mapped_column(String(16))  # api | config
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ReplicationRun(Base):
    """One execution of a rule. Scheduled runs are unique per (rule, scheduled time), so
    replicas that fire the same schedule create it once; the lease is the planner's."""

    __tablename__ = "replication_runs"
    __table_args__ = (UniqueConstraint("rule_id", "scheduled_for"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("replication_rules.id", ondelete="CASCADE"))
    trigger: Mapped[str] = mapped_column(String(16))  # manual | schedule | index
    scheduled_for: Mapped[datetime | None]
    # The rule as it was when the run was made: a rule edited mid-run does not split the run.
    spec: Mapped[dict[str, Any]] = mapped_column()
    # pending → planning → running → succeeded | failed
    status: Mapped[str] = mapped_column(String(16), index=True)
    error: Mapped[str | None] = mapped_column(Text)
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_until: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class ReplicationTask(Base):
    """One image of a run (or, with an empty tag, a repository that could not be listed)."""

    __tablename__ = "replication_tasks"
    __table_args__ = (
        UniqueConstraint("run_id", "source_repository", "tag"),
        Index("ix_replication_tasks_status_lease_until", "status", "lease_until"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(
        ForeignKey("replication_runs.id", ondelete="CASCADE"), index=True
    )
    source_repository: Mapped[str] = mapped_column(String(255))
    destination_repository: Mapped[str] = mapped_column(String(255))
    tag: Mapped[str] = mapped_column(String(128))
    # pending → running → copied | skipped | failed | conflict | denied
    status: Mapped[str] = mapped_column(String(16))
    digest: Mapped[str | None] = mapped_column(DIGEST)
    reason: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(128))  # kept when finished
    lease_until: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    manifests_copied: Mapped[int] = mapped_column(Integer, default=0)
    manifests_skipped: Mapped[int] = mapped_column(Integer, default=0)
    manifests_failed: Mapped[int] = mapped_column(Integer, default=0)
    blobs_copied: Mapped[int] = mapped_column(Integer, default=0)
    blobs_skipped: Mapped[int] = mapped_column(Integer, default=0)
    blobs_failed: Mapped[int] = mapped_column(Integer, default=0)
    blobs_mounted: Mapped[int] = mapped_column(Integer, default=0)
    bytes_copied: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_skipped: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_failed: Mapped[int] = mapped_column(BigInteger, default=0)
    referrers_copied: Mapped[int] = mapped_column(Integer, default=0)
    referrers_skipped: Mapped[int] = mapped_column(Integer, default=0)
    referrers_failed: Mapped[int] = mapped_column(Integer, default=0)
