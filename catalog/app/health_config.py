"""The ``health:`` section of the serve config: how readiness is probed."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from catalog.schedules import parse_duration


class HealthSettings(BaseModel):
    """The server is ready (health SERVING) while its database answers and is migrated; this
    says how often that is asked and how long an answer may take."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    listen: str | None = Field(
        default=None,
        description="a plain-text gRPC listener serving only the health service, for probes "
        "that cannot speak TLS (Kubernetes' grpc probes); health is open to anyone anyway",
    )
    interval: str = Field(default="5s", description="how often the database is probed")
    timeout: str = Field(default="2s", description="how long one probe may take")

    @field_validator("interval", "timeout")
    @classmethod
    def _duration(cls, value: str) -> str:
        if parse_duration(value) > 300:
            raise ValueError(f"{value!r} is over 5m: a probe that rare says little")
        return value

    @property
    def interval_seconds(self) -> int:
        return parse_duration(self.interval)

    @property
    def timeout_seconds(self) -> int:
        return parse_duration(self.timeout)
