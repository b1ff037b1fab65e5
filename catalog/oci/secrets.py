"""Secrets by name: the credentials, CA files and image-layout roots a process may use.

The server's configuration defines them (``secrets:`` in the serve config). A registry, whether
it comes from that file, the API or the CLI, refers to them by *name* only, so no caller can make
the server read a file or an environment variable of the caller's choosing. A named credential is
bound to the registry hosts it belongs to, and token servers other than the registry's own are
listed with it (see :func:`catalog.oci.auth.realm_allowed`).

The local CLI (no server) runs as the user on the user's own machine: its :meth:`Secrets.local`
adds docker's ``config.json`` for registries without named credentials and ``oci:PATH`` layouts
anywhere on the filesystem.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from catalog.errors import ConfigError, InvalidArgument
from catalog.files import read_capped
from catalog.oci.credentials import Credentials, CredentialStore, DockerConfig
from catalog.oci.errors import AuthError
from catalog.oci.reference import LAYOUT_PREFIX

# A USER:PASSWORD file: a token is a few kilobytes; more is not one (docs/limits.md).
MAX_CREDENTIALS_FILE = 64 * 1024

# The grammar every name shares: registries, rules, policies and secrets.
_NAME = re.compile(r"[a-z]([a-z0-9-]{0,61}[a-z0-9])?")


def is_name(text: str) -> bool:
    return _NAME.fullmatch(text) is not None  # fullmatch: "$" would also match before "\n"


@dataclass(frozen=True, slots=True)
class NamedCredentials:
    """Where one named credential comes from, and where it may be sent."""

    name: str
    env: tuple[str, str] | None = None  # the variables holding the user name and the password
    file: Path | None = None  # a file holding USER:PASSWORD
    docker_config: bool = False  # this process's docker config.json, looked up per host
    hosts: frozenset[str] = frozenset()  # registry hosts it may be sent to; empty: any
    token_realms: frozenset[str] = frozenset()  # token servers (host[:port]) besides the host

    def __repr__(self) -> str:  # says where from, never what
        return f"NamedCredentials({self.name!r})"

    def load(self, host: str) -> Credentials | None:
        """The credentials for ``host``; errors name the source, never a value."""
        if self.env is not None:
            user_var, password_var = self.env
            user, password = os.environ.get(user_var), os.environ.get(password_var)
            if user is None or password is None:
                raise AuthError(f"credentials {self.name!r}: ${user_var} or ${password_var} unset")
            return Credentials(user, password)
        if self.file is not None:
            try:
                text = read_capped(self.file, MAX_CREDENTIALS_FILE).decode().strip()
            except OSError as exc:
                raise AuthError(f"credentials {self.name!r}: {self.file}: {exc.strerror}") from None
            except UnicodeDecodeError:  # its message would quote the secret's bytes
                raise AuthError(f"credentials {self.name!r}: {self.file} is not UTF-8") from None
            user, sep, password = text.partition(":")
            if not sep:
                raise AuthError(f"credentials {self.name!r}: {self.file} must hold USER:PASSWORD")
            return Credentials(user, password)
        return DockerConfig().lookup(host)


@dataclass(frozen=True, slots=True)
class Secrets:
    """The named secrets of one process (the server's, or the local CLI user's)."""

    credentials: dict[str, NamedCredentials] = field(default_factory=dict)
    ca_files: dict[str, Path] = field(default_factory=dict)
    layouts: dict[str, Path] = field(default_factory=dict)
    local: bool = False  # the user's own machine: ambient docker config, layouts anywhere

    @classmethod
    def of(
        cls,
        credentials: Iterable[NamedCredentials] = (),
        ca_files: Iterable[tuple[str, Path]] = (),
        layouts: Iterable[tuple[str, Path]] = (),
        *,
        local: bool = False,
    ) -> Secrets:
        return cls({c.name: c for c in credentials}, dict(ca_files), dict(layouts), local=local)

    @property
    def _where(self) -> str:
        return "the config file (--config)" if self.local else "the server"

    # -- a registry being created: InvalidArgument, one line, never the value refused --------

    def check_registry(self, host: str, credentials: str | None, ca: str | None) -> None:
        """Refuse a registry whose secrets this process does not define, or whose credentials
        are not for its host."""
        if credentials is not None:
            named = self.credentials.get(credentials) if is_name(credentials) else None
            if named is None:
                raise InvalidArgument(
                    f"credentials must be the name of an entry of {self._where}'s "
                    "secrets.credentials (env:, file:, paths and unknown names are refused)"
                )
            if named.hosts and host not in named.hosts:
                raise InvalidArgument(
                    f"credentials {credentials!r} are not for host {host!r} "
                    f"(their hosts: {', '.join(sorted(named.hosts))})"
                )
        if ca is not None and (not is_name(ca) or ca not in self.ca_files):
            raise InvalidArgument(
                f"ca_file must be the name of an entry of {self._where}'s secrets.ca_files "
                "(paths and unknown names are refused)"
            )
        if host.startswith(LAYOUT_PREFIX):
            self._layout(host, InvalidArgument)

    # -- a stored registry being opened: ConfigError when the configuration no longer has it --

    def credentials_for(
        self, name: str | None, host: str
    ) -> tuple[Credentials | None, frozenset[str]]:
        """The credentials to send to ``host`` and the token servers they may also go to."""
        if name is None:
            return None, frozenset()
        named = self.credentials.get(name)
        if named is None:
            raise ConfigError(f"credentials {name!r} are not defined in secrets.credentials")
        if named.hosts and host not in named.hosts:
            raise ConfigError(f"credentials {name!r} are not for host {host!r}")
        return named.load(host), named.token_realms

    def ca_file(self, name: str | None) -> Path | None:
        if name is None:
            return None
        path = self.ca_files.get(name)
        if path is None:
            raise ConfigError(f"CA file {name!r} is not defined in secrets.ca_files")
        return path

    def credential_store(self) -> CredentialStore:
        """Where a registry without named credentials finds some: nowhere on a server, docker's
        config.json on the user's own machine."""
        return CredentialStore(ambient=self.local)

    def layout(self, host: str) -> Path:
        """The directory of an ``oci:ROOT[/PATH]`` registry, inside its configured root."""
        path = self._layout(host, ConfigError)
        root = self.layouts.get(host.removeprefix(LAYOUT_PREFIX).split("/", 1)[0])
        if root is not None and not path.resolve().is_relative_to(root.resolve()):
            raise ConfigError(f"{host}: leaves its layout root (a symbolic link?)")
        return path

    def _layout(self, host: str, error: type[Exception]) -> Path:
        rest = host.removeprefix(LAYOUT_PREFIX)
        root_name, _, below = rest.partition("/")
        root = self.layouts.get(root_name)
        if root is None:
            if self.local and rest:
                return Path(rest)  # the user's own files
            raise error(
                "an oci: registry must be oci:ROOT or oci:ROOT/PATH, ROOT the name of an entry "
                f"of {self._where}'s secrets.layouts"
            )
        parts = below.split("/") if below else []
        if any(p in ("", ".", "..") or "\\" in p for p in parts):
            raise error(f"oci:{root_name}/…: the path must stay below the layout root")
        return root.joinpath(*parts)
