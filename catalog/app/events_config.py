"""The ``events`` section of the serve configuration: where registries send push notifications.

    events:
      listen: 0.0.0.0:8088          # off loopback only with tls and auth, as the API
      tls: {cert_file: …, key_file: …}
      settle: 0.1                   # seconds a registry's events gather before its index run
      max_pending: 10000            # repositories waiting at most; past it events are dropped

Registries authenticate with a bearer token of the ``auth`` section bound to the ``notifier``
role (Distribution: ``notifications.endpoints[].headers: {Authorization: [Bearer …]}``).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from catalog.app.tls_config import TlsSettings


class EventsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    listen: str = Field(description="host:port of the registry-events HTTP(S) listener")
    tls: TlsSettings | None = None
    settle: float = Field(default=0.1, ge=0, le=60)
    max_pending: int = Field(default=10_000, ge=1, le=1_000_000)
