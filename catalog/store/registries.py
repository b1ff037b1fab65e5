"""Registries and repositories: the places the catalog knows."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from catalog.errors import AlreadyExists, ConfigError, InvalidArgument, NotFound
from catalog.hostport import is_loopback_host
from catalog.oci.errors import InvalidReference
from catalog.oci.globs import check_repository_glob
from catalog.oci.reference import DOCKER_HUB, LAYOUT_PREFIX, parse_image_reference
from catalog.oci.secrets import is_name
from catalog.store.models import Registry, Repository, table_of, utcnow

# Re-exported: the records live apart from SQL (catalog/store/views.py) for light importers.
from catalog.store.names import validate_name as validate_name
from catalog.store.views import IndexStatus as IndexStatus
from catalog.store.views import RegistrySpec as RegistrySpec

INTERRUPTED = "interrupted: the process running it stopped before it ended"
# Caps on what a caller may store: every registry must still fit a page of ListRegistries
# (1000 of them in gRPC's 4 MiB), and none of it is echoed back when refused.
HOST_MAX = 255
SCHEDULE_MAX = 128
REPOSITORIES_MAX = 100
PATTERN_MAX = 255
ERROR_MAX = 1024
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def validate_host(text: str) -> str:
    """The registry ``host[:port]`` of ``text`` (the reference grammar), or an image layout
    ``oci:…`` (whose root the process's secrets check), at most HOST_MAX characters. A URL
    ``http(s)://host[:port][/]`` gives its host (:func:`registry_address` keeps its scheme);
    one with a path, query or credentials is refused rather than stored half understood."""
    return _split_url(text)[0]


def registry_address(text: str, insecure: bool, ca_file: str | None) -> tuple[str, bool]:
    """``(host, insecure)`` for what a user wrote as a registry's host: ``http://`` is plain
    HTTP (insecure), ``https://`` TLS; a scheme that contradicts ``insecure`` or ``ca_file`` is
    refused, and so is ``https://`` to a loopback host without a CA (loopback is spoken in plain
    HTTP unless a CA is given, and nothing else could store the wish for TLS)."""
    host, scheme = _split_url(text)
    if scheme == "http":
        if ca_file is not None:
            raise InvalidArgument(f"{text!r} is plain HTTP, but a CA file asks for TLS")
        return host, True
    if scheme == "https":
        if insecure:
            raise InvalidArgument(f"{text!r} is HTTPS, but insecure asks for plain HTTP")
        if ca_file is None and is_loopback_host(host):
            raise InvalidArgument(
                f"{text!r}: a loopback registry is reached over plain HTTP unless a CA file is "
                f"given (--ca NAME); write {host} for plain HTTP"
            )
    return host, insecure


def _split_url(text: str) -> tuple[str, str | None]:
    """``(host, scheme)``; scheme None when ``text`` is no URL."""
    if not text:
        raise InvalidArgument("a registry host is required")
    if len(text) > HOST_MAX:
        raise InvalidArgument(f"a registry host has at most {HOST_MAX} characters, not {len(text)}")
    if _CONTROL.search(text):
        raise InvalidArgument("a registry host has no control characters")
    if text.startswith(LAYOUT_PREFIX):
        if text == LAYOUT_PREFIX:
            raise InvalidArgument("an oci: registry names its layout: oci:ROOT[/PATH]")
        return text, None
    scheme, separator, rest = text.partition("://")
    if not separator:
        return _check_host(text), None
    # A URL is not echoed when refused: its user part, path or query may hold a secret.
    if scheme.lower() not in ("http", "https"):
        raise InvalidArgument("a registry URL is http://HOST[:PORT] or https://HOST[:PORT]")
    host = rest.removesuffix("/")
    if "@" in host:
        raise InvalidArgument("a registry URL carries no credentials: name them with --credentials")
    if "/" in host or "?" in host or "#" in host:
        raise InvalidArgument(
            "a registry URL is the registry's address alone, http(s)://HOST[:PORT], without a "
            "path or query (repositories are chosen apart: --repository, repositories:)"
        )
    return _check_host(host), scheme.lower()


def _check_host(host: str) -> str:
    try:
        parsed = parse_image_reference(f"{host}/probe", None)
    except InvalidReference:
        parsed = None
    if parsed is None or (parsed.registry != host and host != DOCKER_HUB):
        raise InvalidArgument(f"{host!r} is not a registry host[:port] or http(s)://HOST[:PORT]")
    return host


def validate_spec(spec: RegistrySpec) -> RegistrySpec:
    """``spec`` as stored (a URL host split into host and ``insecure``), or refused when no
    registry may store it (the process's secrets check the names exist)."""
    validate_name(spec.name)
    host, insecure = registry_address(spec.host, spec.insecure, spec.ca_file)
    spec = replace(spec, host=host, insecure=insecure)
    for what, section, value in (
        ("credentials", "credentials", spec.credentials_ref),
        ("ca_file", "ca_files", spec.ca_file),
    ):
        if value is not None and not is_name(value):  # never echoed: it may be a secret
            raise InvalidArgument(
                f"registry {spec.name!r}: {what} must be the name of an entry of the "
                f"configuration's secrets.{section} (env:, file: and paths are refused)"
            )
    if spec.index_schedule is not None:
        if len(spec.index_schedule) > SCHEDULE_MAX:
            raise InvalidArgument(f"an index schedule has at most {SCHEDULE_MAX} characters")
        from catalog.schedules import trigger_for  # pydantic: only a schedule to check needs it

        try:
            trigger_for(spec.index_schedule)
        except ConfigError as exc:
            raise InvalidArgument(f"registry {spec.name!r}: {exc}") from None
    if len(spec.repositories) > REPOSITORIES_MAX:
        raise InvalidArgument(f"a registry has at most {REPOSITORIES_MAX} repository patterns")
    for pattern in spec.repositories:
        if len(pattern) > PATTERN_MAX:
            raise InvalidArgument(f"a repository pattern has at most {PATTERN_MAX} characters")
        try:
            check_repository_glob(pattern)
        except ValueError as exc:
            raise InvalidArgument(f"registry {spec.name!r}: {exc}") from None
    return spec


def create_registry(session: Session, spec: RegistrySpec) -> Registry:
    spec = validate_spec(spec)
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
    spec = validate_spec(spec)
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


def repository(session: Session, registry_id: int, name: str) -> Repository:
    """The repository row of the registry whose id is ``registry_id`` (an indexer asks for each
    of its repositories, so not by name: no registry row to load each time), created on first
    sight; a repository seen again is no longer gone."""
    row = session.scalar(
        select(Repository).where(Repository.registry_id == registry_id, Repository.name == name)
    )
    if row is None:
        row = Repository(registry_id=registry_id, name=name)
        session.add(row)
        session.flush()
    elif row.gone_at is not None:
        row.gone_at = None
    return row


class RepositoryId(NamedTuple):
    """A repository's row id: all the indexer's writes need of it (``content.RepositoryRow``)."""

    id: int


def add_repository(session: Session, registry_id: int, name: str) -> RepositoryId | None:
    """Create the repository row an indexer read was absent, in one statement and without an
    ORM row; ``None`` when it exists after all (another writer created it since)."""
    # Imported here: only an index run needs it (and the dialects' inserts it imports).
    from catalog.store.content import insert_new

    table = table_of(Repository)
    row_id = session.scalar(
        insert_new(session, table, ("registry_id", "name"))
        .values(registry_id=registry_id, name=name)
        .returning(table.c.id)
    )
    return None if row_id is None else RepositoryId(row_id)


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
            last_index_error=failure[:ERROR_MAX] if failure else None,
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
