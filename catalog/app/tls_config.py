"""The transport side of the serve configuration: the `tls` section, the words of
`insecure_serve`, and the rule for who may listen where.

A server listens on a non-loopback address only with TLS and authentication, or when the
config carries :data:`INSECURE_SERVE_WORDS` exactly; on loopback it serves without either and
says so in its log.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, model_validator

from catalog.app.addresses import MAX_CREDENTIAL_FILE as MAX_CREDENTIAL_FILE
from catalog.app.addresses import is_loopback as is_loopback
from catalog.app.addresses import read_credential_file as read_credential_file
from catalog.app.addresses import split_address as split_address
from catalog.errors import ConfigError

INSECURE_SERVE_WORDS = "I accept an unauthenticated, unencrypted API on this network"


class TlsSettings(BaseModel):
    """The server's certificate and key (PEM) and, for mTLS, the CA its clients' certificates
    must chain to. All three are re-read when they change on disk."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cert_file: Path
    key_file: Path
    client_ca_file: Path | None = None
    require_client_cert: bool = False

    @model_validator(mode="after")
    def _client_certificates(self) -> TlsSettings:
        # grpcio offers no "ask for a client certificate but let callers without one in": with a
        # client CA, clients must present a certificate, so say it in the config.
        if self.client_ca_file is not None and not self.require_client_cert:
            raise ValueError(
                "client_ca_file needs require_client_cert: true (gRPC either requires a "
                "client certificate or does not ask for one)"
            )
        if self.require_client_cert and self.client_ca_file is None:
            raise ValueError("require_client_cert needs client_ca_file (the CA clients chain to)")
        return self


def _exact_words(value: str | None) -> str | None:
    if value is not None and value != INSECURE_SERVE_WORDS:
        raise ValueError(f'must be exactly "{INSECURE_SERVE_WORDS}" (or absent)')
    return value


# The exact sentence or absent: a near miss is a mistake, not consent.
InsecureServe = Annotated[str | None, AfterValidator(_exact_words)]


def exposure_warnings(
    listen: str, *, tls: bool, authenticated: bool, insecure_serve: str | None
) -> list[str]:
    """What to log about where and how the server listens.

    Raises :class:`ConfigError` (one line) for a non-loopback address without TLS and
    authentication, unless ``insecure_serve`` carries :data:`INSECURE_SERVE_WORDS`.
    """
    loopback = is_loopback(listen)
    wanted = (("TLS", tls), ("authentication", authenticated))
    missing = [name for name, present in wanted if not present]
    if not missing:
        return []
    if loopback:
        return [f"listening on {listen} without {' or '.join(missing)}: for development only"]
    if insecure_serve != INSECURE_SERVE_WORDS:
        raise ConfigError(
            f"refusing to listen on {listen} (not loopback) without {' and '.join(missing)}: "
            "configure `tls` and `auth`, listen on 127.0.0.1, or set insecure_serve: "
            f'"{INSECURE_SERVE_WORDS}"'
        )
    return [f"listening on {listen} without {' or '.join(missing)}, as insecure_serve accepts"]
