"""Sigstore trusted roots (``trusted_root.json``): parsed once into the keys and CAs we check with.

The file is read with sigstore's public protobuf models (``sigstore-models``), when a signature
first needs its keys (or at once, on request): the trust version hashes the bytes alone, and a
warm gate answering from stored verifications needs nothing else. The production and
staging roots come from the copies shipped inside the installed ``sigstore`` wheel, read directly:
``sigstore``'s own offline mode would copy them to ``~/.cache/sigstore-python`` and trust that copy
from then on, and a service must not trust a file any local user can rewrite.
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import quote

from catalog.files import read_capped
from catalog.trust.errors import TrustRootError

if TYPE_CHECKING:
    from catalog.trust._internal.sigstore_parsed import Authority, LogKey, Parsed

Instance = Literal["production", "staging"]
# The TUF repositories whose roots the wheel ships, under ``sigstore/_store/<quoted URL>/``.
_TUF_URLS: dict[Instance, str] = {
    "production": "https://tuf-repo-cdn.sigstore.dev",
    "staging": "https://tuf-repo-cdn.sigstage.dev",
}
_MAX_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, eq=False)
class SigstoreRoot:
    """A trusted root's bytes; its logs and authorities parsed from them when first used
    (:meth:`parsed` does it at once: a refused file raises :class:`TrustRootError` then)."""

    id: str  # "sigstore:production", "trusted-root:<name>"
    path: Path
    data: bytes = field(repr=False)  # the exact bytes parsed: what the trust version hashes

    @cached_property
    def _parsed(self) -> Parsed:
        # Its records and parser in a module of their own: a command that never verifies a
        # signature (a warm check) neither imports them nor creates their classes.
        from catalog.trust._internal.sigstore_parsed import parse

        return parse(self.id, self.path, self.data)

    def parsed(self) -> SigstoreRoot:
        """This root, parsed now."""
        self._parsed  # noqa: B018 -- computed for its errors; kept by cached_property
        return self

    @property
    def rekor_logs(self) -> tuple[LogKey, ...]:
        return self._parsed.rekor_logs

    @property
    def ct_logs(self) -> tuple[LogKey, ...]:
        return self._parsed.ct_logs

    @property
    def fulcio(self) -> tuple[Authority, ...]:
        return self._parsed.fulcio

    @property
    def timestamp_authorities(self) -> tuple[Authority, ...]:
        return self._parsed.timestamp_authorities

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def rekor_log(self, log_id: str) -> LogKey | None:
        return next((log for log in self.rekor_logs if log.named(log_id)), None)

    def ct_log(self, log_id: str) -> LogKey | None:
        return next((log for log in self.ct_logs if log.named(log_id)), None)


def shipped_root_path(instance: Instance) -> Path:
    """Where the installed ``sigstore`` wheel keeps its copy of an instance's trusted root.

    Found without importing ``sigstore`` (a 300 ms import) from the package's location.
    """
    spec = importlib.util.find_spec("sigstore")
    if spec is None or not spec.submodule_search_locations:
        raise TrustRootError("the sigstore package is not installed")
    package = Path(next(iter(spec.submodule_search_locations)))
    path = package / "_store" / quote(_TUF_URLS[instance], safe="") / "trusted_root.json"
    if not path.is_file():
        raise TrustRootError(f"sigstore's shipped {instance} trusted root is missing at {path}")
    return path


def load_shipped(instance: Instance, *, parse: bool = True) -> SigstoreRoot:
    return load_file(f"sigstore:{instance}", shipped_root_path(instance), parse=parse)


def load_file(root_id: str, path: Path, *, parse: bool = True) -> SigstoreRoot:
    """The root in ``path``, parsed now unless ``parse`` is off (then when first used)."""
    try:
        data = read_capped(path, _MAX_BYTES)
    except OSError as exc:
        raise TrustRootError(f"{root_id}: cannot read {path} ({exc.strerror})") from None
    root = SigstoreRoot(id=root_id, path=path, data=data)
    return root.parsed() if parse else root
