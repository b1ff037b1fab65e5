"""Registry credentials: the value type, docker's ``config.json`` and its credential helpers.

Named credentials (the only kind a registry refers to) are in :mod:`catalog.oci.secrets`.

Docker's order is kept: a ``credHelpers`` entry for the host, then ``auths``, then ``credsStore``.
Helpers are run as docker runs them: ``docker-credential-<name> get`` with the server on stdin.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from catalog.oci.errors import AuthError

_HUB_KEYS = ("https://index.docker.io/v1/", "index.docker.io", "docker.io", "registry-1.docker.io")


@dataclass(frozen=True, slots=True)
class Credentials:
    username: str
    password: str

    def __repr__(self) -> str:  # never leak secrets into logs or tracebacks
        return f"Credentials(username={self.username!r}, password=***)"


def default_docker_config() -> Path:
    base = os.environ.get("DOCKER_CONFIG")
    return Path(base) / "config.json" if base else Path.home() / ".docker" / "config.json"


def _host_keys(host: str) -> list[str]:
    if host in ("docker.io", "index.docker.io", "registry-1.docker.io"):
        return list(_HUB_KEYS)
    return [host, f"https://{host}", f"http://{host}", f"https://{host}/v1/", f"https://{host}/v2/"]


def _decode_auth(entry: dict[str, Any], where: str) -> Credentials | None:
    if entry.get("auth"):
        try:
            decoded = base64.b64decode(entry["auth"], validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise AuthError(f"{where}: 'auth' is not base64 of USER:PASSWORD") from None
        user, sep, password = decoded.partition(":")
        if not sep:
            raise AuthError(f"{where}: 'auth' must decode to USER:PASSWORD")
        return Credentials(user, password)
    if entry.get("username") and entry.get("password"):
        return Credentials(str(entry["username"]), str(entry["password"]))
    if entry.get("identitytoken"):
        # Docker sends identity tokens as the password of the token exchange.
        return Credentials("<token>", str(entry["identitytoken"]))
    return None


def run_credential_helper(helper: str, host: str) -> Credentials | None:
    """Ask ``docker-credential-<helper>`` for the host's credentials (None when it has none)."""
    program = f"docker-credential-{helper}"
    try:
        done = subprocess.run(
            [program, "get"], input=host.encode(), capture_output=True, timeout=30, check=False
        )
    except FileNotFoundError:
        raise AuthError(f"credential helper {program!r} is not on PATH") from None
    except subprocess.TimeoutExpired:
        raise AuthError(f"credential helper {program!r} did not answer within 30 s") from None
    if done.returncode != 0:
        message = (done.stdout or done.stderr).decode(errors="replace").strip()
        if "credentials not found" in message.lower():
            return None
        raise AuthError(f"credential helper {program!r} failed: {message}")
    try:
        answer = json.loads(done.stdout)
        return Credentials(str(answer["Username"]), str(answer["Secret"]))
    except (json.JSONDecodeError, KeyError, TypeError):
        raise AuthError(
            f"credential helper {program!r} answered something that is not JSON"
        ) from None


class DockerConfig:
    """Credentials from a docker ``config.json`` file (missing file: no credentials)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or default_docker_config()
        self._doc: dict[str, Any] | None = None

    def _load(self) -> dict[str, Any]:
        if self._doc is None:
            try:
                doc = json.loads(self.path.read_text())
            except FileNotFoundError:
                doc = {}
            except (OSError, json.JSONDecodeError) as exc:
                raise AuthError(f"cannot read docker config {self.path}: {exc}") from None
            if not isinstance(doc, dict):
                raise AuthError(f"docker config {self.path} is not a JSON object")
            self._doc = doc
        return self._doc

    def lookup(self, host: str) -> Credentials | None:
        doc = self._load()
        keys = _host_keys(host)
        helpers = doc.get("credHelpers") or {}
        for key in keys:
            if key in helpers:
                return run_credential_helper(str(helpers[key]), key)
        auths = doc.get("auths") or {}
        for key in keys:
            entry = auths.get(key)
            if isinstance(entry, dict):
                found = _decode_auth(entry, f"{self.path}: auths[{key!r}]")
                if found:
                    return found
        store = doc.get("credsStore")
        if store:
            return run_credential_helper(str(store), keys[0])
        return None


class CredentialStore:
    """Explicit per-host credentials first, then the docker config (unless ``ambient`` is off:
    a server sends only the credentials its configuration names)."""

    def __init__(
        self,
        explicit: dict[str, Credentials] | None = None,
        docker_config: DockerConfig | None = None,
        *,
        ambient: bool = True,
    ) -> None:
        self.explicit = dict(explicit or {})
        self.docker_config = docker_config or (DockerConfig() if ambient else None)

    def lookup(self, host: str) -> Credentials | None:
        if host in self.explicit:
            return self.explicit[host]
        return self.docker_config.lookup(host) if self.docker_config is not None else None
