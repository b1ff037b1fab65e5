"""The one way the CLI opens a gRPC channel to ``xregistry serve``: TLS and credentials.

- ``--ca-file`` (``$XREGISTRY_CA_FILE``): TLS, the server's certificate checked against this CA;
  ``--cert`` and ``--key`` (``$XREGISTRY_CERT``, ``$XREGISTRY_KEY``): TLS with a client
  certificate (mTLS). Either makes the channel TLS.
- A bearer token from ``$XREGISTRY_TOKEN`` or ``--token-file`` (``$XREGISTRY_TOKEN_FILE``; read at
  each command, so a rotated Kubernetes service-account token is picked up), sent as
  ``authorization: Bearer …`` on every call. gRPC sends it only over a protected channel: TLS,
  or a loopback connection. A token for a server that is not on loopback, with no TLS option
  given, makes the channel TLS checked against gRPC's default roots: it never crosses a
  network in plain text.
- Nothing given: plain text, as a development server on loopback speaks.

The token is never printed, logged or put in an error message.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import grpc
import grpc.aio

from catalog.app.addresses import is_loopback, read_credential_file
from catalog.call_limits import REFUSED_TRAILER
from catalog.errors import ConfigError

# The global options of `xregistry` (catalog/cli/main.py) → their environment variables.
OPTIONS = {
    "ca_file": "XREGISTRY_CA_FILE",
    "cert": "XREGISTRY_CERT",
    "key": "XREGISTRY_KEY",
    "token_file": "XREGISTRY_TOKEN_FILE",
}


@dataclass(frozen=True, slots=True)
class ClientSecurity:
    """What a channel presents and checks; from the command line by :meth:`from_cli`."""

    ca_file: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    token: str | None = field(default=None, repr=False)

    @classmethod
    def from_cli(cls) -> ClientSecurity:
        """The global options of the running command (their environment variables outside one)."""
        ctx = click.get_current_context(silent=True)
        params = ctx.find_root().params if ctx is not None else {}
        given = {
            name: params.get(name) or os.environ.get(variable) or None
            for name, variable in OPTIONS.items()
        }
        cert, key = given["cert"], given["key"]
        if bool(cert) != bool(key):
            raise ConfigError("--cert and --key go together (a client certificate and its key)")
        token_file, token = given["token_file"], os.environ.get("XREGISTRY_TOKEN") or None
        if token_file and token is not None:
            raise ConfigError("give a token in $XREGISTRY_TOKEN or --token-file, not both")
        if token_file:
            token = _token(read_credential_file(Path(token_file), "--token-file"), "--token-file")
        elif token is not None:
            token = _token(token.encode(), "$XREGISTRY_TOKEN")
        ca_file = given["ca_file"]
        return cls(
            Path(ca_file) if ca_file else None,
            Path(cert) if cert else None,
            Path(key) if key else None,
            token,
        )

    def credentials(self, server: str) -> grpc.ChannelCredentials | None:
        """The channel's credentials for ``server``; None for plain text."""
        tls = self.ca_file is not None or self.cert is not None
        calls = None if self.token is None else grpc.access_token_call_credentials(self.token)
        if not tls and calls is None:
            return None
        if not tls and is_loopback(server):
            # No handshake on the wire: a plain-text loopback server, and grpc lets the token
            # through because the peer is local (it refuses any other).
            local = grpc.LocalConnectionType
            kind = local.UDS if server.startswith("unix:") else local.LOCAL_TCP
            transport = grpc.local_channel_credentials(kind)
        else:
            transport = grpc.ssl_channel_credentials(
                root_certificates=_pem(self.ca_file, "--ca-file", key=False),
                private_key=_pem(self.key, "--key", key=True),
                certificate_chain=_pem(self.cert, "--cert", key=False),
            )
        return transport if calls is None else grpc.composite_channel_credentials(transport, calls)


# HTTP/2 pings while a call is open: a connection that died without a word (a host gone, a
# NAT that forgot it) fails the call in 80 s instead of never. One ping a minute stays within
# a gRPC server's default tolerance (a ping every 5 minutes without data, two strikes; the
# server's streams send a message at least every catalog.heartbeats.HEARTBEAT, 15 s).
KEEPALIVE = (("grpc.keepalive_time_ms", 60_000), ("grpc.keepalive_timeout_ms", 20_000))
# A call the server refused because this caller has too many running (its trailer says so; the
# server's limits.calls_at_once: many CI jobs on one token) is tried again after these pauses:
# it was refused before its handler ran. Nothing else is tried again (a response over the
# size limit is refused after the handler ran, with the same status code).
RETRY_PAUSES = (0.2, 0.4, 0.8, 1.6)


class _TryRefusedAgain(grpc.UnaryUnaryClientInterceptor):
    def intercept_unary_unary(
        self,
        continuation: Callable[[grpc.ClientCallDetails, Any], Any],
        details: grpc.ClientCallDetails,
        request: Any,
    ) -> Any:
        for pause in RETRY_PAUSES:
            outcome = continuation(details, request)
            if not _refused_for_load(outcome):
                return outcome
            time.sleep(pause)
        return continuation(details, request)


def _refused_for_load(outcome: Any) -> bool:
    if outcome.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
        return False
    return REFUSED_TRAILER in tuple(outcome.trailing_metadata() or ())


def open_channel(server: str, security: ClientSecurity | None = None) -> grpc.Channel:
    """A blocking channel to ``server`` (HOST:PORT) with the command's TLS and credentials."""
    credentials = (security or ClientSecurity.from_cli()).credentials(server)
    if credentials is None:
        channel = grpc.insecure_channel(server, options=KEEPALIVE)
    else:
        channel = grpc.secure_channel(server, credentials, options=KEEPALIVE)
    return grpc.intercept_channel(channel, _TryRefusedAgain())


def open_aio_channel(server: str, security: ClientSecurity | None = None) -> grpc.aio.Channel:
    """The asyncio twin of :func:`open_channel`, for streamed calls (a refused one is not
    tried again: the command says so in one line)."""
    credentials = (security or ClientSecurity.from_cli()).credentials(server)
    if credentials is None:
        return grpc.aio.insecure_channel(server, options=KEEPALIVE)
    return grpc.aio.secure_channel(server, credentials, options=KEEPALIVE)


def _pem(path: Path | None, what: str, *, key: bool) -> bytes | None:
    """The file's PEM certificates (or private key), checked here: gRPC takes any bytes, then
    fails every call with "cannot reach the server" and logs its own lines to stderr."""
    if path is None:
        return None
    data = read_credential_file(path, what)
    # Imported here: only commands that talk TLS to a server need them.
    from cryptography import x509
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    try:
        if key:
            serialization.load_pem_private_key(data, password=None)
        else:
            x509.load_pem_x509_certificates(data)
    except (ValueError, TypeError, UnsupportedAlgorithm):  # TypeError: it is encrypted
        kind = "an unencrypted PEM private key" if key else "PEM certificates"
        raise ConfigError(f"{what} {path}: not {kind}") from None
    return data


def _token(raw: bytes, where: str) -> str:
    """A bearer token: printable ASCII without spaces once trimmed (what HTTP/2 headers carry).
    The message never quotes it."""
    token = raw.strip()
    if not token:
        raise ConfigError(f"the token in {where} is empty")
    if any(byte < 0x21 or byte > 0x7E for byte in token):
        raise ConfigError(f"the token in {where} has characters a bearer token cannot hold")
    return token.decode("ascii")
