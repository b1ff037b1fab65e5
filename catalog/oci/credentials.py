"""Registry credentials: the value type, the login files of docker and of podman, skopeo and
buildah (containers-auth.json), and docker's credential helpers.

Named credentials (the only kind a registry refers to) are in :mod:`catalog.oci.secrets`; the
login files are read only by the local CLI (:func:`ambient_auth_files`), never by a server.

In one file docker's order is kept: a ``credHelpers`` entry for the host, then ``auths``, then
``credsStore``. Helpers are run as docker runs them: ``docker-credential-<name> get`` with the
server on stdin; a helper answering the user name ``<token>`` gives an identity token.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import subprocess
from pathlib import Path
from typing import Any

from catalog.files import read_capped
from catalog.oci import boundedjson
from catalog.oci.errors import AuthError
from catalog.values import Value

# docker's config.json or containers' auth.json: a few entries per registry; a larger file is
# not one (docs/limits.md).
MAX_LOGIN_FILE = 4 * 1024 * 1024
_HELPER_OUTPUT = 64 * 1024  # a helper's answer is one small JSON object; its errors one line

_HUB_KEYS = ("https://index.docker.io/v1/", "index.docker.io", "docker.io", "registry-1.docker.io")


# Docker's marker for "the secret is an identity token" (docker/cli credentials, helpers).
TOKEN_USERNAME = "<token>"


class Credentials(Value):
    """A user and password, or an identity token; immutable, compared and hashed by value
    (:class:`~catalog.values.Value`)."""

    __slots__ = ("identity_token", "password", "username")
    _FIELDS = ("username", "password", "identity_token")
    username: str
    password: str
    # An OAuth2 refresh token (docker's ``identitytoken``): exchanged at the token server by the
    # refresh-token POST, never sent as Basic (see catalog.oci.auth).
    identity_token: str | None

    def __init__(self, username: str, password: str, identity_token: str | None = None) -> None:
        self._set(username=username, password=password, identity_token=identity_token)

    def __repr__(self) -> str:  # never leak secrets into logs or tracebacks
        token = ", identity_token=***" if self.identity_token else ""
        return f"Credentials(username={self.username!r}, password=***{token})"


def default_docker_config() -> Path:
    base = os.environ.get("DOCKER_CONFIG")
    return Path(base) / "config.json" if base else Path.home() / ".docker" / "config.json"


def ambient_auth_files() -> list[Path]:
    """The login files of the user, in the order containers-auth.json(5) reads them.

    1. ``$REGISTRY_AUTH_FILE`` when set (podman's, skopeo's and buildah's override), else the
       primary file ``${XDG_RUNTIME_DIR}/containers/auth.json`` (where ``podman login`` writes);
    2. ``${XDG_CONFIG_HOME:-~/.config}/containers/auth.json``;
    3. docker's ``${DOCKER_CONFIG:-~/.docker}/config.json``.

    The first file with an entry for the host wins. (The legacy ``~/.dockercfg`` is not read.)
    """
    first = os.environ.get("REGISTRY_AUTH_FILE")
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    config_home = os.environ.get("XDG_CONFIG_HOME")
    paths = []
    if first:
        paths.append(Path(first))
    elif runtime:
        paths.append(Path(runtime) / "containers" / "auth.json")
    paths.append(
        (Path(config_home) if config_home else Path.home() / ".config") / "containers" / "auth.json"
    )
    paths.append(default_docker_config())
    return paths


def _host_keys(host: str) -> list[str]:
    if host in ("docker.io", "index.docker.io", "registry-1.docker.io"):
        return list(_HUB_KEYS)
    return [host, f"https://{host}", f"http://{host}", f"https://{host}/v1/", f"https://{host}/v2/"]


def _decode_auth(entry: dict[str, Any], where: str) -> Credentials | None:
    user = password = ""
    if entry.get("auth"):
        try:
            decoded = base64.b64decode(entry["auth"], validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise AuthError(f"{where}: 'auth' is not base64 of USER:PASSWORD") from None
        user, sep, password = decoded.partition(":")
        if not sep:
            raise AuthError(f"{where}: 'auth' must decode to USER:PASSWORD")
    elif entry.get("username") and entry.get("password"):
        user, password = str(entry["username"]), str(entry["password"])
    token = entry.get("identitytoken")
    if token:
        # Docker writes the user beside the token (``auth`` of "USER:"), the token is the secret.
        if not isinstance(token, str):
            raise AuthError(f"{where}: 'identitytoken' must be a string")
        return Credentials(user, password, identity_token=token)
    return Credentials(user, password) if user or password else None


def _first_line(output: bytes) -> str:
    lines = output.decode(errors="replace").strip().splitlines()
    return lines[0].strip() if lines else ""


# A run of characters that tokens, passwords and base64 are written in, long enough to be one.
_TOKEN_LIKE = r"[A-Za-z0-9+/=_.~@-]{16,}"  # compiled at first use (re caches it): on a failure


def _helper_failure(first: str) -> str:
    """What a failed helper said (its first line), as one line of at most 300 characters. Its
    stdout is where it writes the secret when it succeeds, and a helper may echo the secret in
    its error: a JSON answer, a line of one word (a bare secret, however short) or one with a
    token-like run of 16 characters or more is not quoted; in what is quoted, anything shaped
    like a credential (``password=…``, ``Bearer …``) is redacted too."""
    from catalog.logs import redact  # only on a failure: no command start pays for it

    if first.startswith(("{", "[")):
        return "(its JSON output is not quoted: it may hold the secret)"
    if len(first.split()) == 1 or re.search(_TOKEN_LIKE, first):
        return "(its message is not quoted: it may hold the secret)"
    shown = redact(first)
    return shown if len(shown) <= 300 else shown[:299] + "…"


def run_credential_helper(helper: str, host: str) -> Credentials | None:
    """Ask ``docker-credential-<helper>`` for the host's credentials (None when it has none)."""
    from catalog.oci._bounded_run import OutputTooLarge, run_bounded  # a helper's run only

    program = f"docker-credential-{helper}"
    try:
        done = run_bounded([program, "get"], host.encode(), cap=_HELPER_OUTPUT, timeout=30)
    except FileNotFoundError:
        raise AuthError(f"credential helper {program!r} is not on PATH") from None
    except subprocess.TimeoutExpired:
        raise AuthError(f"credential helper {program!r} did not answer within 30 s") from None
    except OutputTooLarge:
        raise AuthError(
            f"credential helper {program!r} printed more than {_HELPER_OUTPUT} bytes"
        ) from None
    if done.returncode != 0:
        first = _first_line(done.stdout or done.stderr)
        if "credentials not found" in first.lower():
            return None
        raise AuthError(f"credential helper {program!r} failed: {_helper_failure(first)}")
    try:
        # Bounded as any JSON from elsewhere: deep nesting raised RecursionError, a 5,000-digit
        # number ValueError, each a traceback.
        answer = boundedjson.loads(done.stdout, max_depth=8, max_values=1_000)
        username, secret = str(answer["Username"]), str(answer["Secret"])
    except (ValueError, KeyError, TypeError):
        raise AuthError(
            f"credential helper {program!r} answered something that is not JSON"
        ) from None
    if username == TOKEN_USERNAME:
        return Credentials("", "", identity_token=secret)
    return Credentials(username, secret)


class DockerConfig:
    """Credentials from a docker ``config.json`` or a containers ``auth.json`` file (the same
    format; a missing file has no credentials)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or default_docker_config()
        self._doc: dict[str, Any] | None = None

    def _load(self) -> dict[str, Any]:
        if self._doc is None:
            try:
                raw = read_capped(self.path, MAX_LOGIN_FILE)
                doc = boundedjson.loads(raw, max_depth=32, max_values=100_000)
            except FileNotFoundError:
                doc = {}
            except OSError as exc:
                raise AuthError(f"cannot read login file {self.path}: {exc.strerror}") from None
            except boundedjson.JSONRefused as exc:
                raise AuthError(f"login file {self.path}: {exc}") from None
            if not isinstance(doc, dict):
                raise AuthError(f"login file {self.path} is not a JSON object")
            self._doc = doc
        return self._doc

    def lookup(self, host: str) -> Credentials | None:
        doc = self._load()
        keys = _host_keys(host)
        helpers = self._section(doc, "credHelpers")
        for key in keys:
            if key in helpers:
                return run_credential_helper(str(helpers[key]), key)
        auths = self._section(doc, "auths")
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

    def _section(self, doc: dict[str, Any], key: str) -> dict[str, Any]:
        section = doc.get(key) or {}
        if not isinstance(section, dict):
            raise AuthError(f"login file {self.path}: {key!r} is not a JSON object")
        return section


class AuthFiles:
    """Several login files read in order; the first with credentials for the host wins."""

    def __init__(self, paths: list[Path] | None = None) -> None:
        self.files = [DockerConfig(p) for p in (ambient_auth_files() if paths is None else paths)]

    def lookup(self, host: str) -> Credentials | None:
        for file in self.files:
            found = file.lookup(host)
            if found is not None:
                return found
        return None


class CredentialStore:
    """Explicit per-host credentials first, then the user's login files (unless ``ambient`` is
    off: a server sends only the credentials its configuration names)."""

    def __init__(
        self,
        explicit: dict[str, Credentials] | None = None,
        docker_config: DockerConfig | AuthFiles | None = None,
        *,
        ambient: bool = True,
    ) -> None:
        self.explicit = dict(explicit or {})
        self.docker_config = docker_config or (AuthFiles() if ambient else None)

    def lookup(self, host: str) -> Credentials | None:
        if host in self.explicit:
            return self.explicit[host]
        return self.docker_config.lookup(host) if self.docker_config is not None else None
