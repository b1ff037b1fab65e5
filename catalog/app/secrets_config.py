"""The ``secrets:`` section of the serve configuration: what registries may refer to by name.

```yaml
secrets:
  credentials:
    - {name: robot, env: "ROBOT_USER:ROBOT_PASSWORD", hosts: [registry.acme.io]}
    - {name: mirror, file: /run/secrets/mirror, hosts: ["mirror.acme.io:5000"]}
    - {name: hub, docker_config: true, hosts: [docker.io]}
    - {name: gitlab, env: "GL_USER:GL_TOKEN", hosts: [registry.gitlab.com],
       token_realms: [gitlab.com]}
  ca_files: [{name: corp, file: /etc/xregistry/corp-ca.pem}]
  layouts: [{name: local, path: /srv/layouts}]
```

Credentials read from a variable or a file name the registry hosts they belong to (``hosts``):
a registry on another host cannot use them, so whoever may create registries cannot send them
elsewhere. ``token_realms`` lists token servers besides the registry's own host that may receive
them (the realm rule in :mod:`catalog.oci.auth`).
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from catalog.oci.secrets import NamedCredentials, Secrets
from catalog.store.registries import validate_host, validate_name

_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_AUTHORITY = re.compile(r"[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]{2,45}\](:[0-9]{1,5})?")


class _Named(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return validate_name(value, "secret name")


class CredentialsConfig(_Named):
    env: str | None = Field(default=None, description="USER_VAR:PASSWORD_VAR")
    file: Path | None = Field(default=None, description="a file holding USER:PASSWORD")
    docker_config: bool = Field(default=False, description="this process's docker config.json")
    hosts: list[str] = Field(default_factory=list, description="registry hosts they are for")
    token_realms: list[str] = Field(default_factory=list, description="token servers, host[:port]")

    @field_validator("env")
    @classmethod
    def _env(cls, value: str | None) -> str | None:
        if value is not None:
            user, _, password = value.partition(":")
            if not (_VARIABLE.fullmatch(user) and _VARIABLE.fullmatch(password)):
                raise ValueError("env is USER_VAR:PASSWORD_VAR, two variable names")
        return value

    @field_validator("hosts")
    @classmethod
    def _hosts(cls, value: list[str]) -> list[str]:
        for host in value:
            validate_host(host)
        return value

    @field_validator("token_realms")
    @classmethod
    def _realms(cls, value: list[str]) -> list[str]:
        for realm in value:
            if not _AUTHORITY.fullmatch(realm):
                raise ValueError(f"token realm {realm[:100]!r} is not a host[:port]")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> CredentialsConfig:
        if sum((self.env is not None, self.file is not None, self.docker_config)) != 1:
            raise ValueError("give exactly one of env, file or docker_config: true")
        if not self.docker_config and not self.hosts:
            # A password read from a variable or file is some registry's: say which.
            raise ValueError("credentials from env or file need the hosts they are for")
        return self

    def named(self) -> NamedCredentials:
        user_var, _, password_var = (self.env or "").partition(":")
        return NamedCredentials(
            name=self.name,
            env=(user_var, password_var) if self.env else None,
            file=self.file,
            docker_config=self.docker_config,
            hosts=frozenset(self.hosts),
            token_realms=frozenset(self.token_realms),
        )


class CaFileConfig(_Named):
    file: Path


class LayoutRootConfig(_Named):
    path: Path


class SecretsSettings(BaseModel):
    """Named credentials, CA files and image-layout roots (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    credentials: list[CredentialsConfig] = Field(default_factory=list)
    ca_files: list[CaFileConfig] = Field(default_factory=list)
    layouts: list[LayoutRootConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> SecretsSettings:
        for what, entries in (
            ("credentials", self.credentials),
            ("ca_files", self.ca_files),
            ("layouts", self.layouts),
        ):
            names = [e.name for e in entries]
            duplicates = sorted({n for n in names if names.count(n) > 1})
            if duplicates:
                raise ValueError(f"{what} names must be unique: {', '.join(duplicates)}")
        return self

    def build(self, *, local: bool = False) -> Secrets:
        return Secrets.of(
            [c.named() for c in self.credentials],
            [(c.name, c.file) for c in self.ca_files],
            [(lay.name, lay.path) for lay in self.layouts],
            local=local,
        )
