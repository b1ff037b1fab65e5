"""The `metrics` and `log` sections of the serve configuration.

    metrics:
      listen: 0.0.0.0:9102        # GET /metrics; off without listen
      tls: {cert_file: …, key_file: …}
      replica: pod-a              # the `replica` label of the gauges (default: the host name)
      refresh: 15s                # how often per-rule lag is read from the store
    log: {level: INFO, format: json}

The metrics listener obeys the gRPC listener's exposure rule: off loopback only with TLS and
authentication (a token bound to a role holding the `metrics` permission), or with
`insecure_serve` when a NetworkPolicy alone guards the port.
"""

from __future__ import annotations

import socket
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from catalog.app.tls_config import TlsSettings, split_address
from catalog.schedules import parse_duration


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MetricsSettings(_Section):
    listen: str | None = Field(default=None, description="host:port of GET /metrics")
    tls: TlsSettings | None = None
    replica: str = Field(
        default_factory=socket.gethostname, min_length=1, max_length=200, pattern=r"^\S+$"
    )
    refresh: str = Field(default="15s", description="how often per-rule lag is read")

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str | None) -> str | None:
        if value is not None and split_address(value)[1] is None:
            raise ValueError(f"{value!r}: a listen address is HOST:PORT")
        return value

    @field_validator("refresh")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @property
    def refresh_seconds(self) -> int:
        return parse_duration(self.refresh)


class LogSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["text", "json"] = "text"

    @field_validator("level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value
