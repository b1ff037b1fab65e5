"""How to talk to one registry: TLS, credentials, limits, timeouts, retries, sizes."""

from pathlib import Path
from typing import Literal, NamedTuple

from catalog.oci.credentials import Credentials
from catalog.oci.manifest import DEFAULT_MANIFEST_LIMIT
from catalog.oci.retry import RetryPolicy

DEFAULT_JSON_LIMIT = 8 * 1024 * 1024
TOKEN_LIMIT = 64 * 1024


class RegistryOptions(NamedTuple):
    """How to talk to one registry.

    Every answer is bounded: ``read_timeout`` between two reads, ``request_timeout`` for a whole
    request (answer and JSON body; an upload gets one second more per ``min_throughput`` bytes
    it sends), ``json_limit`` bytes for a catalog, tag list, referrers or error body,
    ``token_limit`` characters for a token (its answer: twice that and 4 KiB), and a blob
    download slower than ``min_throughput`` bytes/s over ``throughput_window`` seconds is
    dropped and resumed. Pagination stops with an error after ``max_pages`` pages or on a page
    already read.

    A named tuple (``_replace`` for a changed copy), not a dataclass: every one-shot command
    builds one, and a dataclass's generated methods are compiled at each process's start.
    """

    insecure: bool = False  # allow plain HTTP for a host that is not loopback
    ca_file: Path | None = None  # trust this CA bundle (implies HTTPS, loopback included)
    credentials: Credentials | None = None  # explicit; otherwise looked up per host
    # Token servers (host[:port]) credentials may go to besides the registry's own host
    # (catalog.oci.auth.realm_allowed).
    token_realms: frozenset[str] = frozenset()
    max_concurrency: int = 16
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    request_timeout: float = 120.0
    min_throughput: int = 16 * 1024
    throughput_window: float = 30.0
    json_limit: int = DEFAULT_JSON_LIMIT
    token_limit: int = TOKEN_LIMIT  # characters of a token server's token
    max_pages: int = 10_000
    retry: RetryPolicy = RetryPolicy()
    manifest_limit: int = DEFAULT_MANIFEST_LIMIT
    chunk_size: int = 16 * 1024 * 1024  # blobs larger than this are uploaded in chunks
    # What carries the bytes: aiohttp (the server's gate and replication), or the standard
    # library for a one-shot command, which then starts without aiohttp's import, and for every
    # index run, whose many small requests cost the event loop less there (same bounds, same
    # errors).
    transport: Literal["aiohttp", "stdlib"] = "aiohttp"
