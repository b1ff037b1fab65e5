"""The ``admission`` section of the serve configuration: the Kubernetes admission webhook.

    admission:
      listen: 0.0.0.0:8443
      tls: {cert_file: /etc/xregistry/tls/tls.crt, key_file: /etc/xregistry/tls/tls.key}
      policy: default
      failure: deny            # or allow, with a warning: an image not verified in time
      exempt_namespaces: [xregistry, kube-system]
      exempt_images: ["registry.k8s.io/**"]
      namespace_labels: {source: kubernetes}

Validated here, served by ``catalog.admission``; docs/kubernetes.md explains every key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from catalog.app.tls_config import TlsSettings
from catalog.trust.policy.image_globs import check_glob

# What the API server allows a webhook: 1-30 s, 10 s when the configuration does not say.
DEFAULT_TIMEOUT = 10.0
MAX_TIMEOUT = 30.0


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NamespaceLabels(_Section):
    """Where namespace labels (for policies' ``namespaces.matchLabels``) come from: nowhere
    (``none``: label selectors always match), or the Kubernetes API, read with the pod's
    service account and cached."""

    source: Literal["none", "kubernetes"] = "none"
    api_server: str = "https://kubernetes.default.svc"
    token_file: Path = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
    ca_file: Path = Path("/var/run/secrets/kubernetes.io/serviceaccount/ca.crt")
    cache_seconds: float = Field(default=60.0, ge=0, le=3600)
    timeout_seconds: float = Field(default=1.0, gt=0, le=10)

    @field_validator("api_server")
    @classmethod
    def _https(cls, value: str) -> str:
        from catalog.app.auth_config import https_url

        return https_url(value).rstrip("/")


class AdmissionSettings(_Section):
    listen: str | None = Field(default=None, description="host:port; the webhook is off without")
    tls: TlsSettings | None = None
    policy: str = Field(default="default", description="the stored policy set to judge with")
    failure: Literal["deny", "allow"] = Field(
        default="deny",
        description="an image not verified before the review's deadline: deny it, or allow it "
        "with a warning",
    )
    margin_seconds: float = Field(
        default=0.5, ge=0, le=5, description="answered this long before the review's timeout"
    )
    allow_anonymous: bool = Field(
        default=False,
        description="let callers without credentials review (for API servers that cannot be "
        "given any: keep the listener reachable from the API server only, see docs/security.md)",
    )
    exempt_namespaces: list[str] = Field(default_factory=list)
    exempt_images: list[str] = Field(default_factory=list)
    namespace_labels: NamespaceLabels = Field(default_factory=NamespaceLabels)
    max_body_bytes: int = Field(default=3 << 20, ge=1 << 10, le=16 << 20)
    max_containers: int = Field(default=100, ge=1, le=1000)

    @field_validator("exempt_images")
    @classmethod
    def _globs(cls, values: list[str]) -> list[str]:
        return [check_glob(value) for value in values]

    @model_validator(mode="after")
    def _served(self) -> AdmissionSettings:
        # The API server calls webhooks over HTTPS only; plain HTTP is for a loopback test.
        if self.listen is not None and self.tls is None:
            from catalog.app.tls_config import is_loopback

            if not is_loopback(self.listen):
                raise ValueError(
                    "admission.listen off loopback needs admission.tls: the API server calls "
                    "webhooks over HTTPS only"
                )
        return self
