"""How a command reaches the catalog: the database directly, or a running server."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from datetime import datetime
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, Protocol, TypeVar

import click

import catalog.index as indexing  # its names resolved on use: get_type_hints, not a command
from catalog.errors import CatalogUnreachable, FailedPrecondition
from catalog.lazy import collector_paused
from catalog.store import views

if TYPE_CHECKING:
    from sqlalchemy import URL, Engine
    from sqlalchemy.orm import Session, sessionmaker

    from catalog.app.catalog_service import CatalogService
    from catalog.oci.secrets import Secrets

P = ParamSpec("P")
R = TypeVar("R")


class Reader(Protocol):
    """What commands that only read need of the catalog: the database's, or a server's."""

    def list_registries(
        self, size: int = 0, after: views.Key | None = None
    ) -> views.Page[views.RegistryView]: ...

    def list_index_errors(
        self, registry: str, size: int = 0, after: views.Key | None = None
    ) -> views.Page[views.IndexErrorView]: ...

    def list_tags(
        self,
        registry: str,
        repository: str,
        show_gone: bool = False,
        size: int = 0,
        after: views.Key | None = None,
    ) -> views.Page[views.TagView]: ...

    def artifact(self, reference: str) -> views.ArtifactView: ...

    def find(
        self,
        purl: str | None = None,
        name: str | None = None,
        version: str | None = None,
        size: int = 0,
        after: views.Key | None = None,
    ) -> views.Page[views.PackageMatch]: ...

    def tag_events(
        self,
        registry: str,
        repository: str,
        tag: str,
        size: int = 0,
        after: views.Key | None = None,
    ) -> views.Page[views.TagEventView]: ...


class Catalog(Reader, Protocol):
    """What commands that change the catalog (or index) need of it besides."""

    def add_registry(self, spec: views.RegistrySpec) -> views.RegistryView: ...

    def remove_registry(self, name: str) -> None: ...

    async def index(
        self, name: str, on_progress: indexing.ProgressCallback | None = None
    ) -> indexing.IndexStats: ...


def server_address(ctx: click.Context) -> str | None:
    """``--server`` (or ``$XREGISTRY_SERVER``): a command given one opens no database."""
    server = ctx.find_root().params.get("server")
    return str(server) if server else None


def database_url(ctx: click.Context) -> str:
    from catalog.store.db import DEFAULT_URL

    url = ctx.find_root().params.get("database") or os.environ.get("XREGISTRY_DATABASE")
    return str(url or DEFAULT_URL)


def config_path() -> str | None:
    """The config file whose ``secrets`` the local CLI uses (--config, $XREGISTRY_CONFIG)."""
    ctx = click.get_current_context(silent=True)
    given = ctx.find_root().params.get("config") if ctx is not None else None
    return str(given or os.environ.get("XREGISTRY_CONFIG") or "") or None


def open_sessions(url: str) -> sessionmaker[Session]:
    """Sessions on the database at ``url``, its schema brought up to date first."""
    from catalog.store.db import session_factory

    return session_factory(open_engine(url))


_opened = False  # whether this process opened a catalog before


@contextlib.contextmanager
def opening() -> Iterator[None]:
    """The block opening the catalog: its modules' imports (SQLAlchemy's, or gRPC's with
    --server) and the database's engine. The first in a process runs with the collector paused,
    then frozen (see :func:`collector_paused`: ~27M instructions of a ``registry list``'s
    1,130M); a process running many commands (tests) freezes once."""
    global _opened
    if _opened:
        yield
        return
    _opened = True
    with collector_paused():
        yield


def open_engine(url: str) -> Engine:
    """The database at ``url``, its schema brought up to date first."""
    with opening():
        return _open_engine(url)


def _open_engine(url: str) -> Engine:
    from sqlalchemy.exc import OperationalError

    from catalog.store.db import make_engine, upgrade

    try:
        engine = make_engine(url)
    except FailedPrecondition as exc:  # the driver cannot be loaded: the database cannot open
        raise CatalogUnreachable(str(exc)) from None
    try:
        upgrade(engine)
    except OperationalError as exc:
        # Like a server nobody answers: one line (never the password), not a traceback.
        where = _shown(engine.url)
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        raise CatalogUnreachable(f"cannot open the database {where}: {reason}") from None
    return engine


def _shown(url: URL) -> str:
    """``url`` as an error may show it: no password, neither the user's nor a parameter
    (libpq's ``password``, ``sslpassword``)."""
    query = {k: "***" if "password" in k.lower() else v for k, v in url.query.items()}
    return url.set(query=query).render_as_string(hide_password=True)


def open_service(url: str) -> CatalogService:
    """The catalog on a database, its schema brought up to date first. Indexing starts the
    runs of replication rules that follow the registry (a server's worker executes them).
    Registries' secrets are the local user's (:func:`local_secrets`)."""
    # Imported here: with --server no command needs the service, its config or migrations.
    from catalog.app.catalog_service import CatalogService

    sessions = open_sessions(url)

    def after_index(registry: str, since: datetime) -> None:
        from replication.service import ReplicationService

        ReplicationService(sessions).on_indexed(registry, since)

    return CatalogService(sessions, after_index=after_index, secrets=local_secrets())


def local_secrets() -> Secrets:
    """The local CLI's secrets (no server: the user's own machine): the ``secrets`` section of
    the config file of --config/$XREGISTRY_CONFIG if given, with docker's config.json and
    ``oci:PATH`` layouts anywhere besides. The config's loader (pydantic, every section) is
    imported only when a file is given."""
    from catalog.oci.secrets import Secrets

    path = config_path()
    if not path:
        return Secrets(local=True)
    from catalog.app.config import load_config

    return load_config(Path(path)).secrets.build(local=True)


def with_catalog(func: Callable[Concatenate[Any, P], R]) -> Callable[P, R]:
    """Give the command its catalog as first argument: the server's when --server is set."""
    return _given(open_catalog, func)


def with_reader(func: Callable[Concatenate[Any, P], R]) -> Callable[P, R]:
    """:func:`with_catalog` for a command that only reads: :func:`open_reader`'s catalog."""
    return _given(open_reader, func)


def _given(
    opener: Callable[[click.Context], object], func: Callable[Concatenate[Any, P], R]
) -> Callable[P, R]:
    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        return func(opener(click.get_current_context()), *args, **kwargs)

    return wrapper


def open_reader(ctx: click.Context) -> Reader:
    """The catalog of a command that only reads: the server's when --server is set, else the
    database's queries on a plain connection (no ORM, no service, no secrets to load)."""
    if server_address(ctx):
        return open_catalog(ctx)
    with opening():
        from catalog.app.catalog_reads import CatalogReads

        return CatalogReads(open_engine(database_url(ctx)).connect)


def open_catalog(ctx: click.Context) -> Catalog:
    """The command's catalog: the server's when --server is set, else the database's."""
    with opening():
        server = server_address(ctx)
        if server:
            from catalog.cli.remote import RemoteCatalog

            return RemoteCatalog(server)
        return open_service(database_url(ctx))
