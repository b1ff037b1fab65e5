"""A tiny synchronous registry client for seeding and checking registries in tests.

Independent of the code under test on purpose: raw HTTP with http.client, Basic or Bearer auth
answered from the registry's challenge, monolithic blob uploads.
"""

from __future__ import annotations

import base64
import http.client
import json
import re
import ssl
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .images import ACCEPT, Blob, BuiltManifest


class RegistryHTTPError(RuntimeError):
    def __init__(self, method: str, path: str, response: Response) -> None:
        super().__init__(f"{method} {path} -> {response.status}: {response.body[:500]!r}")
        self.response = response


@dataclass
class Response:
    status: int
    headers: dict[str, str]  # lower-case names; repeated headers joined with ", "
    body: bytes

    def json(self) -> object:
        return json.loads(self.body)


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """`Bearer realm="…",service="…",scope="…"` → ("bearer", {realm, service, scope})."""
    scheme, _, rest = header.strip().partition(" ")
    params = dict(re.findall(r'(\w+)="([^"]*)"', rest))
    return scheme.lower(), params


@dataclass
class RegistryClient:
    url: str  # "http(s)://host:port" of a registry or a proxy in front of one
    username: str | None = None
    password: str | None = None
    ca_file: Path | None = None
    timeout: float = 60.0
    tokens: dict[str, str] = field(default_factory=dict)  # scope string → bearer token
    _basic: bool = field(default=False, init=False, repr=False)  # registry asked for Basic

    # -- transport -----------------------------------------------------------------------------

    def _connection(self, netloc: str, scheme: str) -> http.client.HTTPConnection:
        if scheme == "https":
            context = ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)
            return http.client.HTTPSConnection(netloc, timeout=self.timeout, context=context)
        return http.client.HTTPConnection(netloc, timeout=self.timeout)

    def _send(
        self, method: str, url: str, body: bytes | None, headers: Mapping[str, str]
    ) -> Response:
        parts = urllib.parse.urlsplit(url)
        conn = self._connection(parts.netloc, parts.scheme)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        try:
            conn.request(method, target, body=body, headers=dict(headers))
            resp = conn.getresponse()
            data = resp.read()
            merged: dict[str, str] = {}
            for key, value in resp.getheaders():
                key = key.lower()
                merged[key] = f"{merged[key]}, {value}" if key in merged else value
            return Response(resp.status, merged, data)
        finally:
            conn.close()

    def _scope_for(self, url: str) -> str | None:
        """A cached token's scope that covers this URL's repository (or the catalog)."""
        path = urllib.parse.urlsplit(url).path
        repo = re.match(r"^/v2/(.+?)/(?:blobs|manifests|tags|referrers)/", path)
        want = f"repository:{repo.group(1)}:" if repo else "registry:catalog:"
        if path.rstrip("/") == "/v2":
            want = ""
        return next((s for s in self.tokens if want in s), None)

    def _auth_header(self, scope: str | None) -> dict[str, str]:
        if scope is not None and scope in self.tokens:
            return {"Authorization": f"Bearer {self.tokens[scope]}"}
        if self._basic and self.username is not None:
            return {"Authorization": self._basic_value()}
        return {}

    def _basic_value(self) -> str:
        raw = f"{self.username}:{self.password or ''}".encode()
        return "Basic " + base64.b64encode(raw).decode()

    def _authenticate(self, challenge: str) -> str | None:
        """Answer a challenge; return the scope key to use next (None for Basic)."""
        scheme, params = parse_challenge(challenge)
        if scheme == "basic":
            self._basic = True
            return None
        scope = params.get("scope", "")
        self.tokens[scope] = self.fetch_token(params["realm"], params.get("service"), scope)
        return scope

    def fetch_token(self, realm: str, service: str | None, scope: str) -> str:
        query = [("service", service)] if service else []
        query += [("scope", s) for s in scope.split(" ") if s]
        url = realm + ("?" + urllib.parse.urlencode(query) if query else "")
        headers = {"Authorization": self._basic_value()} if self.username else {}
        resp = self._send("GET", url, None, headers)
        if resp.status != 200:
            raise RegistryHTTPError("GET", url, resp)
        doc = resp.json()
        assert isinstance(doc, dict)
        token = doc.get("token") or doc.get("access_token")
        assert isinstance(token, str)
        return token

    def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        scope: str | None = None,
    ) -> Response:
        """Send to `path` (or an absolute URL), answering one auth challenge if needed."""
        url = path if "://" in path else self.url.rstrip("/") + path
        hdrs = dict(headers or {})
        scope = scope if scope is not None else self._scope_for(url)
        resp = self._send(method, url, body, {**hdrs, **self._auth_header(scope)})
        challenge = resp.headers.get("www-authenticate")
        if resp.status == 401 and challenge and (self.username or "bearer" in challenge.lower()):
            scope = self._authenticate(challenge)
            resp = self._send(method, url, body, {**hdrs, **self._auth_header(scope)})
        return resp

    def check(
        self,
        method: str,
        path: str,
        expect: tuple[int, ...],
        *,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """`request`, raising RegistryHTTPError unless the status is one of `expect`."""
        resp = self.request(method, path, body=body, headers=headers)
        if resp.status not in expect:
            raise RegistryHTTPError(method, path, resp)
        return resp

    # -- registry operations -------------------------------------------------------------------

    def push_blob(self, repo: str, blob: Blob) -> None:
        """Monolithic upload: POST a session, PUT the bytes with ?digest=."""
        start = self.check("POST", f"/v2/{repo}/blobs/uploads/", (202,), body=b"")
        location = start.headers["location"]
        sep = "&" if "?" in location else "?"
        target = f"{location}{sep}digest={urllib.parse.quote(blob.digest)}"
        if "://" in target and not target.startswith(self.url):
            # Keep talking to the address we were given (e.g. a proxy), path and query only.
            parts = urllib.parse.urlsplit(target)
            target = parts.path + "?" + parts.query
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(blob.size)}
        resp = self.check("PUT", target, (201,), body=blob.data, headers=headers)
        if resp.headers.get("docker-content-digest", blob.digest) != blob.digest:
            raise RuntimeError(f"registry stored {resp.headers['docker-content-digest']}")

    def push_manifest(
        self, repo: str, manifest: BuiltManifest, reference: str | None = None
    ) -> None:
        """PUT the exact bytes under `reference` (default: the digest)."""
        ref = reference or manifest.digest
        headers = {"Content-Type": manifest.media_type}
        resp = self.check(
            "PUT", f"/v2/{repo}/manifests/{ref}", (201,), body=manifest.raw, headers=headers
        )
        if resp.headers.get("docker-content-digest", manifest.digest) != manifest.digest:
            raise RuntimeError(f"registry computed {resp.headers['docker-content-digest']}")

    def push_image(self, repo: str, image: BuiltManifest, tag: str | None = None) -> None:
        """Blobs first, then children by digest, then the top manifest (by tag if given)."""
        for blob in image.all_blobs():
            self.push_blob(repo, blob)
        for manifest in image.walk():
            self.push_manifest(repo, manifest, tag if manifest is image else None)

    def get_manifest(self, repo: str, reference: str, accept: str = ACCEPT) -> Response:
        return self.check(
            "GET", f"/v2/{repo}/manifests/{reference}", (200,), headers={"Accept": accept}
        )

    def get_blob(self, repo: str, digest: str) -> bytes:
        return self.check("GET", f"/v2/{repo}/blobs/{digest}", (200,)).body
