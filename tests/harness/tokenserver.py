"""A Docker token-auth server (distribution docs/spec/auth/token.md, jwt.md, oauth.md) for tests.

Runs a ThreadingHTTPServer on a loopback port in a daemon thread. Known users get every action
they ask for; anonymous callers get only `pull` on repositories under `public_prefix`.

Besides the GET exchange it answers the OAuth2 POST of oauth.md (unless `oauth` is off, when a
POST gets 404 as from a server without it): `grant_type=password` (with `access_type=offline` it
issues a refresh token) and `grant_type=refresh_token` with a token from `issue_refresh_token`.
Each refresh grant rotates the token: the one used stops working, the answer carries the next.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import re
import secrets
import threading
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal

import jwt
from cryptography.hazmat.primitives import serialization

from .pki import CertKey, make_signing_cert

KeyHeader = Literal["x5c", "kid", "none"]  # "none" exists to show Distribution refuses it


@dataclass(frozen=True)
class Access:
    """One `access` claim entry: actions granted on a typed, named resource."""

    type: str
    name: str
    actions: tuple[str, ...]

    def claim(self) -> dict[str, Any]:
        return {"type": self.type, "name": self.name, "actions": list(self.actions)}


@dataclass(frozen=True)
class TokenRequest:
    """A request the token server answered (including refused ones)."""

    user: str | None  # None: anonymous
    service: str | None
    scopes: tuple[str, ...]
    granted: tuple[Access, ...]
    status: int  # 200 issued, 401 bad credentials
    time: float  # time.time() when answered
    method: str = "GET"
    grant_type: str | None = None  # the OAuth2 POST's
    client_id: str | None = None


def parse_scope(scope: str) -> tuple[str, str, tuple[str, ...]] | None:
    """Split `type[(class)]:name:actions`; the name may itself contain ':' (a registry port)."""
    head, sep, rest = scope.partition(":")
    name, sep2, actions = rest.rpartition(":")
    if not sep or not sep2 or not head or not name:
        return None
    rtype = re.sub(r"\(.*\)$", "", head)  # drop a resource class such as "repository(plugin)"
    return rtype, name, tuple(a for a in actions.split(",") if a)


def libtrust_key_id(cert: CertKey) -> str:
    """The libtrust fingerprint Distribution 2.8 uses as `kid` for keys in rootcertbundle."""
    der = cert.key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    b32 = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode()
    return ":".join(b32[i : i + 4] for i in range(0, len(b32), 4))


@dataclass
class TokenServer:
    """Issues registry bearer tokens; see `run_token_server`."""

    workdir: Path
    users: dict[str, str] = field(default_factory=dict)
    public_prefix: str = "public/"
    expires_in: int = 300  # seconds; the JWT `exp` is `iat + expires_in`
    service: str = "xregistry-test"
    issuer: str = "xregistry-test-issuer"
    key_header: KeyHeader = "x5c"
    port: int = 0
    oauth: bool = True  # answer the OAuth2 POST (off: 404, as a server without it)
    refusal_status: int = 401  # how a refused grant is answered (OAuth2 itself says 400)
    _refresh_tokens: dict[str, str] = field(default_factory=dict, init=False, repr=False)
    _signer: CertKey | None = field(default=None, init=False, repr=False)
    _server: ThreadingHTTPServer | None = field(default=None, init=False, repr=False)
    _thread: threading.Thread | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _requests: list[TokenRequest] = field(default_factory=list, init=False, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def realm(self) -> str:
        return f"{self.url}/token"

    @property
    def signer(self) -> CertKey:
        if self._signer is None:
            raise RuntimeError("token server not started")
        return self._signer

    @property
    def rootcertbundle(self) -> Path:
        return self.signer.cert_file

    def registry_auth_config(self) -> dict[str, Any]:
        """The `auth:` section of a Distribution config trusting this server."""
        return {
            "token": {
                "realm": self.realm,
                "service": self.service,
                "issuer": self.issuer,
                "rootcertbundle": str(self.rootcertbundle),
            }
        }

    # -- recorded requests -------------------------------------------------------------------

    @property
    def requests(self) -> list[TokenRequest]:
        """A snapshot of every request answered so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def count(
        self, *, user: str | Literal["*"] | None = "*", scope: str | None = None, status: int = 200
    ) -> int:
        """Answered requests with this status, from `user` ("*" any, None anonymous), and
        (when `scope` is a regex) with at least one requested scope matching it."""
        pattern = re.compile(scope) if scope is not None else None
        return sum(
            1
            for r in self.requests
            if r.status == status
            and (user == "*" or r.user == user)
            and (pattern is None or any(pattern.search(s) for s in r.scopes))
        )

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()

    def issue_refresh_token(self, user: str) -> str:
        """A refresh token for `user` (what `docker login` stores as `identitytoken`)."""
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._refresh_tokens[token] = user
        return token

    def _redeem(self, token: str) -> str | None:
        with self._lock:
            return self._refresh_tokens.pop(token, None)

    def _record(self, entry: TokenRequest) -> None:
        with self._lock:
            self._requests.append(entry)

    # -- policy and signing ------------------------------------------------------------------

    def grant(self, user: str | None, scopes: list[str]) -> list[Access]:
        """What `user` gets for `scopes`: the intersection of asked and allowed, merged."""
        merged: dict[tuple[str, str], list[str]] = {}
        for scope in scopes:
            parsed = parse_scope(scope)
            if parsed is None:
                continue
            rtype, name, actions = parsed
            if user is None:
                public = rtype == "repository" and name.startswith(self.public_prefix)
                actions = tuple(a for a in actions if a == "pull") if public else ()
            if not actions:
                continue
            have = merged.setdefault((rtype, name), [])
            have.extend(a for a in actions if a not in have)
        return [Access(t, n, tuple(a)) for (t, n), a in merged.items()]

    def mint(
        self,
        access: list[Access],
        *,
        subject: str = "",
        expires_in: int | None = None,
        issued_at: int | None = None,
        audience: str | None = None,
        issuer: str | None = None,
    ) -> str:
        """Sign a token directly (tests use this for expired or foreign-audience tokens)."""
        iat = int(time.time()) if issued_at is None else issued_at
        life = self.expires_in if expires_in is None else expires_in
        claims = {
            "iss": self.issuer if issuer is None else issuer,
            "sub": subject,
            "aud": self.service if audience is None else audience,
            "exp": iat + life,
            "nbf": iat,
            "iat": iat,
            "jti": secrets.token_hex(16),
            "access": [a.claim() for a in access],
        }
        # Distribution 2.8 finds the verification key from the JOSE header only: either the
        # certificate chain (`x5c`, checked against rootcertbundle) or a libtrust-style `kid`.
        headers: dict[str, Any] = {"typ": "JWT"}
        if self.key_header == "x5c":
            headers["x5c"] = [base64.b64encode(self.signer.cert_der).decode()]
        elif self.key_header == "kid":
            headers["kid"] = libtrust_key_id(self.signer)
        return jwt.encode(claims, self.signer.key, algorithm="ES256", headers=headers)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._signer = make_signing_cert(self.workdir)
        server = ThreadingHTTPServer(("127.0.0.1", self.port), _handler_for(self))
        server.daemon_threads = True
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None


def _handler_for(ts: TokenServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean

        def do_GET(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            if url.path != "/token":
                self._send(404, {"errors": [{"code": "NOT_FOUND", "message": url.path}]})
                return
            query = urllib.parse.parse_qs(url.query)
            scopes = [s for value in query.get("scope", []) for s in value.split(" ") if s]
            service = query.get("service", [None])[0]
            user, ok = self._credentials()
            if not ok:
                ts._record(TokenRequest(user, service, tuple(scopes), (), 401, time.time()))
                self._send(
                    401,
                    {"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]},
                    {"WWW-Authenticate": 'Basic realm="xregistry-test-token"'},
                )
                return
            granted = ts.grant(user, scopes)
            issued_at = int(time.time())
            token = ts.mint(granted, subject=user or "", issued_at=issued_at)
            ts._record(TokenRequest(user, service, tuple(scopes), tuple(granted), 200, time.time()))
            stamp = dt.datetime.fromtimestamp(issued_at, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            body = {
                "token": token,
                "access_token": token,
                "expires_in": ts.expires_in,
                "issued_at": stamp,
            }
            self._send(200, body)

        def do_POST(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            # Read the body first even when refusing: left unread, it would be taken as the
            # next request on this keep-alive connection.
            length = int(self.headers.get("Content-Length") or 0)
            form = urllib.parse.parse_qs(self.rfile.read(min(length, 65536)).decode())
            if url.path != "/token" or not ts.oauth:
                self._send(404, {"errors": [{"code": "NOT_FOUND", "message": url.path}]})
                return

            def one(key: str) -> str | None:
                return form.get(key, [None])[0]

            grant, service, client_id = one("grant_type"), one("service"), one("client_id")
            scopes = [s for s in (one("scope") or "").split(" ") if s]
            user: str | None = None
            offline = one("access_type") == "offline"
            if grant == "refresh_token":
                user = ts._redeem(one("refresh_token") or "")
                offline = True  # the next refresh needs the next token
            elif grant == "password":
                name, password = one("username") or "", one("password") or ""
                expected = ts.users.get(name)
                if expected is not None and secrets.compare_digest(expected, password):
                    user = name
            if user is None or not client_id:
                ts._record(
                    TokenRequest(user, service, tuple(scopes), (), ts.refusal_status, time.time(),
                                 "POST", grant, client_id)
                )  # fmt: skip
                # RFC 6749 5.2 says 400; Docker's token servers answer 401: both are seen.
                self._send(ts.refusal_status, {"error": "invalid_grant"})
                return
            granted = ts.grant(user, scopes)
            token = ts.mint(granted, subject=user)
            ts._record(
                TokenRequest(user, service, tuple(scopes), tuple(granted), 200, time.time(),
                             "POST", grant, client_id)
            )  # fmt: skip
            body: dict[str, Any] = {
                "access_token": token,
                "scope": " ".join(scopes),
                "expires_in": ts.expires_in,
            }
            if offline:
                body["refresh_token"] = ts.issue_refresh_token(user)
            self._send(200, body)

        def _credentials(self) -> tuple[str | None, bool]:
            header = self.headers.get("Authorization")
            if header is None:
                return None, True
            scheme, _, value = header.partition(" ")
            if scheme.lower() != "basic":
                return None, False
            try:
                user, _, password = base64.b64decode(value.strip()).decode().partition(":")
            except ValueError:
                return None, False
            expected = ts.users.get(user)
            good = expected is not None and secrets.compare_digest(expected, password)
            return user, good

        def _send(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

    return Handler


@contextmanager
def run_token_server(
    workdir: Path,
    *,
    users: Mapping[str, str] | None = None,
    public_prefix: str = "public/",
    expires_in: int = 300,
    service: str = "xregistry-test",
    issuer: str = "xregistry-test-issuer",
    key_header: KeyHeader = "x5c",
) -> Iterator[TokenServer]:
    """Start a token server; `users` maps user name to password (default: alice, random)."""
    server = TokenServer(
        workdir=workdir,
        users=dict(users) if users is not None else {"alice": secrets.token_urlsafe(12)},
        public_prefix=public_prefix,
        expires_in=expires_in,
        service=service,
        issuer=issuer,
        key_header=key_header,
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()
