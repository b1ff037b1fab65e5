"""Registries and repositories: the places the catalog knows."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from catalog.errors import AlreadyExists, InvalidArgument, NotFound
from catalog.oci.globs import check_repository_glob
from catalog.store.models import Registry, Repository, utcnow

_NAME = re.compile(r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")
INTERRUPTED = "interrupted: the process running it stopped before it ended"


class IndexStatus(StrEnum):
    """Where a registry's last index run is (``registries.last_index_status``); None: never
    indexed."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"  # the run got to the end (per-repository errors are counted apart)
    FAILED = "failed"  # the run stopped early: unreachable, refused, interrupted


@dataclass(frozen=True, slots=True)
class RegistrySpec:
    """What a user says about a registry (config file, CLI, API)."""

    name: str
    host: str
    insecure: bool = False
    ca_file: str | None = None
    credentials_ref: str | None = None
    repositories: tuple[str, ...] = ()  # catalog.oci.globs; empty means every repository
    index_schedule: str | None = None


def validate_name(name: str, what: str = "registry name") -> str:
    """``name`` when it fits the grammar registry, rule and policy names share; ``what`` names
    it in the error."""
    if not _NAME.fullmatch(name):  # not match: "$" also matches before a final newline
        raise InvalidArgument(
            f"invalid {what} {name!r}: 1-63 of lower-case letters, digits and '-', "
            "starting with a letter"
        )
    return name


def _check_repositories(spec: RegistrySpec) -> None:
    for pattern in spec.repositories:
        try:
            check_repository_glob(pattern)
        except ValueError as exc:
            raise InvalidArgument(f"registry {spec.name!r}: {exc}") from None


def create_registry(session: Session, spec: RegistrySpec) -> Registry:
    validate_name(spec.name)
    _check_repositories(spec)
    if session.scalar(select(Registry).where(Registry.name == spec.name)) is not None:
        raise AlreadyExists(f"registry {spec.name!r} already exists")
    row = Registry(
        name=spec.name,
        host=spec.host,
        insecure=spec.insecure,
        ca_file=spec.ca_file,
        credentials_ref=spec.credentials_ref,
        repositories_filter=list(spec.repositories),
        index_schedule=spec.index_schedule,
    )
    session.add(row)
    session.flush()
    return row


def update_registry(session: Session, spec: RegistrySpec) -> Registry:
    """Create the registry, or bring an existing one in line with ``spec`` (config reloads)."""
    row = session.scalar(select(Registry).where(Registry.name == spec.name))
    if row is None:
        return create_registry(session, spec)
    _check_repositories(spec)
    row.host = spec.host
    row.insecure = spec.insecure
    row.ca_file = spec.ca_file
    row.credentials_ref = spec.credentials_ref
    row.repositories_filter = list(spec.repositories)
    row.index_schedule = spec.index_schedule
    return row


def get_registry(session: Session, name: str) -> Registry:
    row = session.scalar(select(Registry).where(Registry.name == name))
    if row is None:
        raise NotFound(f"no registry named {name!r}")
    return row


def delete_registry(session: Session, name: str) -> None:
    session.delete(get_registry(session, name))


def repository(session: Session, registry: Registry, name: str) -> Repository:
    """The repository row, created on first sight; a repository seen again is no longer gone."""
    row = session.scalar(
        select(Repository).where(Repository.registry_id == registry.id, Repository.name == name)
    )
    if row is None:
        row = Repository(registry_id=registry.id, name=name)
        session.add(row)
        session.flush()
    elif row.gone_at is not None:
        row.gone_at = None
    return row


def mark_repositories_gone(session: Session, registry: Registry, present: set[str]) -> int:
    now = utcnow()
    gone = 0
    for row in session.scalars(
        select(Repository).where(
            Repository.registry_id == registry.id, Repository.gone_at.is_(None)
        )
    ):
        if row.name not in present:
            row.gone_at = now
            gone += 1
    return gone


# -- index runs: written when a run starts, ends, fails or is found interrupted ----------------
# UPDATE by name: a registry removed during its run is no error.


def index_started(session: Session, name: str, at: datetime) -> None:
    session.execute(
        update(Registry)
        .where(Registry.name == name)
        .values(
            last_index_status=IndexStatus.RUNNING,
            last_index_started_at=at,
            last_index_error=None,
            last_index_errors=None,
        )
    )


def index_ended(
    session: Session, name: str, at: datetime, errors: int | None, failure: str | None = None
) -> None:
    """The run ended: it succeeded (with ``errors`` index errors), or failed for ``failure``."""
    session.execute(
        update(Registry)
        .where(Registry.name == name)
        .values(
            last_index_status=IndexStatus.FAILED if failure else IndexStatus.SUCCEEDED,
            last_index_at=at,
            last_index_error=failure,
            last_index_errors=errors,
        )
    )


def interrupt_index_runs(session: Session, at: datetime) -> list[str]:
    """Mark the runs still said to be running as failed (interrupted) → their registries.

    For a server starting: a run it does not hold was left by a process that died. (A run that
    another replica holds right now ends later and writes its own outcome over this one.)"""
    names = session.scalars(
        update(Registry)
        .where(Registry.last_index_status == IndexStatus.RUNNING)
        .values(
            last_index_status=IndexStatus.FAILED, last_index_at=at, last_index_error=INTERRUPTED
        )
        .returning(Registry.name)
    )
    return sorted(names)
