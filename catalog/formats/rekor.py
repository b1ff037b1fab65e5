"""Transparency-log entries, from cosign's legacy bundle annotation and from Sigstore bundles."""

from __future__ import annotations

import re
from typing import Any

from catalog.formats import _json as j
from catalog.formats._base64 import b64decode
from catalog.formats.records import TlogEntry

_HEX = re.compile(r"[0-9a-fA-F]{2,128}")


def from_cosign_annotation(text: str, path: str) -> TlogEntry:
    """``dev.sigstore.cosign/bundle``: ``{"SignedEntryTimestamp", "Payload": {"body", …}}``."""
    bundle = j.as_object(j.load(text, path), path)
    payload = j.req_object(bundle, "Payload", path)
    where = f"{path}.Payload"
    body = b64decode(j.req_str(payload, "body", where, max_len=2**31), f"{where}.body")
    kind, version = _body_kind(body, f"{where}.body")
    log_id = j.opt_str(payload, "logID", where)
    if log_id is not None and not _HEX.fullmatch(log_id):
        j.fail(f"{where}.logID", "not a hex log ID")
    set_b64 = j.opt_str(bundle, "SignedEntryTimestamp", path, max_len=2**20)
    return TlogEntry(
        kind=kind,
        version=version,
        log_index=_non_negative(payload, "logIndex", where),
        log_id=None if log_id is None else log_id.lower(),
        integrated_time=_non_negative(payload, "integratedTime", where),
        body=body,
        signed_entry_timestamp=(
            None if set_b64 is None else b64decode(set_b64, f"{path}.SignedEntryTimestamp")
        ),
        has_inclusion_proof=False,
    )


def from_bundle_entry(value: Any, path: str) -> TlogEntry:
    """One ``verificationMaterial.tlogEntries[]`` item of a Sigstore bundle (proto3 JSON)."""
    entry = j.as_object(value, path)
    kind_version = j.opt_object(entry, "kindVersion", path) or {}
    log_id = j.opt_object(entry, "logId", path)
    key_id = None if log_id is None else j.opt_str(log_id, "keyId", f"{path}.logId")
    promise = j.opt_object(entry, "inclusionPromise", path)
    set_b64 = (
        None
        if promise is None
        else j.opt_str(promise, "signedEntryTimestamp", f"{path}.inclusionPromise", max_len=2**20)
    )
    body_b64 = j.opt_str(entry, "canonicalizedBody", path, max_len=2**31)
    return TlogEntry(
        kind=j.opt_str(kind_version, "kind", f"{path}.kindVersion"),
        version=j.opt_str(kind_version, "version", f"{path}.kindVersion"),
        log_index=_non_negative(entry, "logIndex", path),
        log_id=None if key_id is None else b64decode(key_id, f"{path}.logId.keyId").hex(),
        integrated_time=_non_negative(entry, "integratedTime", path),
        body=None if body_b64 is None else b64decode(body_b64, f"{path}.canonicalizedBody"),
        signed_entry_timestamp=(
            None
            if set_b64 is None
            else b64decode(set_b64, f"{path}.inclusionPromise.signedEntryTimestamp")
        ),
        has_inclusion_proof=j.opt_object(entry, "inclusionProof", path) is not None,
    )


def _non_negative(obj: dict[str, Any], key: str, path: str) -> int | None:
    value = j.opt_int(obj, key, path)
    if value is not None and value < 0:
        j.fail(f"{path}.{key}", f"must not be negative, got {value}")
    return value


def _body_kind(body: bytes, path: str) -> tuple[str | None, str | None]:
    entry = j.as_object(j.load(body, path), path)
    return j.opt_str(entry, "kind", path), j.opt_str(entry, "apiVersion", path)
