"""The `trust` section of the serve configuration: what signatures are verified against. Apart
from the rest of the configuration so that a local `verify` builds its trust without loading
every section's models."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from catalog.trust.roots import TrustConfig


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NamedFile(_Strict):
    name: str
    file: Path


class PkiFiles(_Strict):
    name: str
    roots: Path
    intermediates: Path | None = None


class TrustSettings(_Strict):
    """What signatures are verified against (see the README's trust section)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    sigstore: tuple[Literal["production", "staging"], ...] = ("production",)
    trusted_roots: list[NamedFile] = Field(default_factory=list, alias="trustedRoots")
    keys: list[NamedFile] = Field(default_factory=list)
    pki: list[PkiFiles] = Field(default_factory=list)

    def build(self) -> TrustConfig:
        from catalog.trust.roots import load

        return load(
            instances=self.sigstore,
            trusted_roots=[(r.name, r.file) for r in self.trusted_roots],
            key_files=[(k.name, k.file) for k in self.keys],
            pki_files=[(p.name, p.roots, p.intermediates) for p in self.pki],
        )
