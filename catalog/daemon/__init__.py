"""``xregistry serve``: one process running the gRPC services, scheduled indexing and the
replication worker against one database, startable and stoppable from tests as from the CLI."""

from catalog.daemon.process import Server, migrate, serve

__all__ = ["Server", "migrate", "serve"]
