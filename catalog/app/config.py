"""The ``xregistry serve`` configuration file (YAML), validated with clear errors."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from catalog.app.admission_config import AdmissionSettings
from catalog.app.auth_config import AuthSettings
from catalog.app.events_config import EventsSettings
from catalog.app.health_config import HealthSettings
from catalog.app.limits_config import LimitsSettings
from catalog.app.ops_config import LogSettings, MetricsSettings
from catalog.app.secrets_config import SecretsSettings
from catalog.app.tls_config import InsecureServe, TlsSettings, exposure_warnings
from catalog.app.trust_config import TrustSettings
from catalog.errors import ConfigError
from catalog.files import read_capped
from catalog.schedules import IndexSchedule, parse_duration
from catalog.store.db import DEFAULT_URL
from catalog.store.registries import (
    RegistrySpec,
    registry_address,
    validate_host,
    validate_name,
)
from catalog.yamlerrors import load_bounded, yaml_problem
from replication.spec import RuleSpec

# A serve config lists registries, rules and settings; 4 MiB is thousands of them, and YAML is
# parsed whole in memory (docs/limits.md).
MAX_CONFIG_FILE = 4 * 1024 * 1024
# Values once aliases are expanded: a written file of 4 MiB holds fewer; an alias bomb, billions.
MAX_CONFIG_VALUES = 1_000_000


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RegistryConfig(_Strict):
    name: str
    host: str
    insecure: bool = False
    ca_file: str | None = Field(default=None, description="the name of one of secrets.ca_files")
    credentials: str | None = Field(
        default=None, description="the name of one of secrets.credentials"
    )
    repositories: list[str] = Field(default_factory=list)
    index: IndexSchedule | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        try:
            return validate_name(value)
        except ValueError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        validate_host(value)  # its grammar, reported at the field; the scheme is split below
        return value

    @model_validator(mode="after")
    def _address(self) -> RegistryConfig:
        # host[:port], http(s)://HOST[:PORT] (the scheme sets insecure) or oci:ROOT[/PATH]
        host, insecure = registry_address(self.host, self.insecure, self.ca_file)
        if (host, insecure) == (self.host, self.insecure):
            return self
        return self.model_copy(update={"host": host, "insecure": insecure})

    def spec(self) -> RegistrySpec:
        return RegistrySpec(
            name=self.name,
            host=self.host,
            insecure=self.insecure,
            ca_file=self.ca_file,
            credentials_ref=self.credentials,
            repositories=tuple(self.repositories),
            index_schedule=self.index.as_text() if self.index else None,
        )


class ReplicationSettings(_Strict):
    """This process's replication worker, and the rules the config file manages."""

    workers: int = Field(default=8, ge=1, le=64, description="images copied at once")
    lease: str = Field(default="30s", description="how long a dead worker's task stays claimed")
    poll: str = Field(default="2s", description="how often an idle worker looks for work")
    rules: list[RuleSpec] = Field(default_factory=list)

    @field_validator("lease", "poll")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @model_validator(mode="after")
    def unique_rules(self) -> ReplicationSettings:
        _unique("rule", [r.name for r in self.rules])
        return self

    @property
    def lease_seconds(self) -> int:
        return parse_duration(self.lease)

    @property
    def poll_seconds(self) -> int:
        return parse_duration(self.poll)


def _unique(what: str, names: list[str]) -> None:
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"{what} names must be unique: {', '.join(duplicates)}")


class ServeConfig(_Strict):
    database: str = DEFAULT_URL
    listen: str = "127.0.0.1:50051"
    registries: list[RegistryConfig] = Field(default_factory=list)
    trust: TrustSettings = Field(default_factory=TrustSettings)
    replication: ReplicationSettings = Field(default_factory=ReplicationSettings)
    auth: AuthSettings | None = None  # None: anonymous callers (loopback only)
    secrets: SecretsSettings = Field(default_factory=SecretsSettings)
    tls: TlsSettings | None = None
    insecure_serve: InsecureServe = None
    events: EventsSettings | None = None  # registry push notifications
    limits: LimitsSettings = Field(default_factory=LimitsSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    admission: AdmissionSettings = Field(default_factory=AdmissionSettings)
    health: HealthSettings = Field(default_factory=HealthSettings)

    @model_validator(mode="after")
    def unique_names(self) -> ServeConfig:
        _unique("registry", [r.name for r in self.registries])
        return self

    @model_validator(mode="after")
    def named_secrets(self) -> ServeConfig:
        """Registries refer to secrets this file defines, for their own hosts."""
        secrets = self.secrets.build()
        for registry in self.registries:
            try:
                secrets.check_registry(registry.host, registry.credentials, registry.ca_file)
            except ValueError as exc:
                raise ValueError(f"registry {registry.name!r}: {exc}") from None
        return self

    @model_validator(mode="after")
    def certificates_need_client_certs(self) -> ServeConfig:
        """grpc asks for a client certificate only when it requires one: principals from
        certificates need `tls.client_ca_file` with `require_client_cert: true`."""
        if self.auth is not None and self.auth.certificates:
            # The admission listener's own client CA is enough: the API server's certificate.
            listeners = (self.tls, self.admission.tls)
            if not any(t is not None and t.require_client_cert for t in listeners):
                raise ValueError(
                    "auth.certificates needs tls.client_ca_file and tls.require_client_cert: true "
                    "(or the same in admission.tls)"
                )
        return self

    @property
    def authenticated(self) -> bool:
        """Callers are authenticated: the `auth` section names tokens, OIDC issuers or client
        certificates."""
        auth = self.auth
        return auth is not None and bool(auth.tokens or auth.oidc or auth.certificates)

    def exposure_warnings(self) -> list[str]:
        """See :func:`catalog.app.tls_config.exposure_warnings` (raises ConfigError to refuse),
        for the API and every other listener."""
        # (prefix, address, TLS, anonymous callers consented to)
        listeners = [("", self.listen, self.tls is not None, False)]
        if self.events is not None:
            listeners.append(("events: ", self.events.listen, self.events.tls is not None, False))
        admission = self.admission
        if admission.listen is not None:  # allow_anonymous is explicit consent
            listeners.append(
                (
                    "admission: ",
                    admission.listen,
                    admission.tls is not None,
                    admission.allow_anonymous,
                )
            )
        metrics = self.metrics
        if metrics.listen is not None:
            listeners.append(("metrics: ", metrics.listen, metrics.tls is not None, False))
        return [
            f"{prefix}{warning}"
            for prefix, listen, tls, anonymous in listeners
            for warning in exposure_warnings(
                listen,
                tls=tls,
                authenticated=self.authenticated or anonymous,
                insecure_serve=self.insecure_serve,
            )
        ]


def _messages(exc: ValidationError) -> list[tuple[str, str]]:
    return [(_where(e["loc"]), e["msg"].removeprefix("Value error, ")) for e in exc.errors()]


def schedule_text(interval: str | None, cron: str | None) -> str:
    """A schedule as the store keeps it, from ``--interval`` or ``--cron``."""
    try:
        return IndexSchedule(interval=interval, cron=cron).as_text()
    except ValidationError as exc:
        raise ConfigError("; ".join(message for _, message in _messages(exc))) from None


def _where(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


DATABASE_ENV = "XREGISTRY_DATABASE_URL"


def with_database_from(environ: Mapping[str, str], config: ServeConfig) -> ServeConfig:
    """``$XREGISTRY_DATABASE_URL``, when set, overrides ``database:`` (a Secret's URL stays
    out of the config file). Set but empty is refused: the image sets it so, and a container
    runs on PostgreSQL unless told otherwise; SQLite only when a URL asks for it."""
    url = environ.get(DATABASE_ENV)
    if url is None:
        return config
    if not url.strip():
        raise ConfigError(
            f"${DATABASE_ENV} is empty: set it to the PostgreSQL URL "
            "(postgresql://USER:PASSWORD@HOST:5432/DB), or to sqlite:///PATH for one replica on "
            "SQLite"
        )
    return config.model_copy(update={"database": url.strip()})


def load_config(path: Path) -> ServeConfig:
    try:
        raw: Any = load_bounded(read_capped(path, MAX_CONFIG_FILE), cap=MAX_CONFIG_VALUES)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        line, reason = yaml_problem(exc)
        raise ConfigError(f"{path}:{line}: {reason}") from None
    except RecursionError:  # PyYAML composes nested collections recursively
        raise ConfigError(f"{path}: not valid YAML: nested too deeply") from None
    if raw is None:
        raw = {}
    try:
        return ServeConfig.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{where}: {message}" for where, message in _messages(exc))
        raise ConfigError(f"{path}: {problems}") from None
