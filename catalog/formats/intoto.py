"""in-toto Statements (v0.1 and v1): header, subjects, predicate."""

from __future__ import annotations

import io
from typing import Any

from catalog.formats import _json as j
from catalog.formats import payload_digests
from catalog.formats._stream import EventReader
from catalog.formats.records import StatementRecord, Subject

PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPES = frozenset(
    {"https://in-toto.io/Statement/v0.1", "https://in-toto.io/Statement/v1"}
)
COSIGN_SIGN_PREDICATE = "https://sigstore.dev/cosign/sign/v1"
# SPDX and CycloneDX predicate types may carry a version after these (".../bom/v1.5").
_SBOM_PREDICATE_PREFIXES = ("https://spdx.dev/Document", "https://cyclonedx.org/bom")
# Larger statements are SBOMs in practice: their predicate stays unparsed (see StatementRecord).
INLINE_LIMIT = 8 * 1024 * 1024
_MAX_SUBJECTS = 10_000


def is_sbom_predicate(predicate_type: str) -> bool:
    return predicate_type.startswith(_SBOM_PREDICATE_PREFIXES)


def decode_statement(payload: bytes, *, inline_limit: int = INLINE_LIMIT) -> StatementRecord:
    if len(payload) > inline_limit:
        return _decode_large(payload)
    statement = j.as_object(j.load(payload, "in-toto statement"), "$")
    predicate = statement.get("predicate")
    return _record(
        statement.get("_type"),
        statement.get("predicateType"),
        statement.get("subject"),
        {} if predicate is None else j.as_object(predicate, "$.predicate"),
        len(payload),
    )


def signed_digests(subjects: tuple[Subject, ...]) -> tuple[str, ...]:
    """The subjects' manifest-style digests (sha256/384/512), each once, in order."""
    found = (
        payload_digests.digest(algorithm, value)
        for subject in subjects
        for algorithm, value in subject.digests.items()
    )
    return tuple(dict.fromkeys(d for d in found if d is not None))


def subjects_from_json(value: Any, path: str) -> tuple[Subject, ...]:
    items = j.as_list(value, path)
    if len(items) > _MAX_SUBJECTS:
        j.fail(path, f"more than {_MAX_SUBJECTS} subjects")
    return tuple(_subject(item, f"{path}[{i}]") for i, item in enumerate(items))


def header_from_json(statement_type: Any, predicate_type: Any) -> tuple[str, str]:
    kind = j.as_text(statement_type, "$._type")
    if kind not in STATEMENT_TYPES:
        j.fail("$._type", f"not an in-toto Statement type: {kind!r}")
    return kind, j.as_text(predicate_type, "$.predicateType")


def _record(
    statement_type: Any,
    predicate_type: Any,
    subjects: Any,
    predicate: dict[str, Any] | None,
    size: int,
) -> StatementRecord:
    kind, predicate_kind = header_from_json(statement_type, predicate_type)
    return StatementRecord(
        statement_type=kind,
        predicate_type=predicate_kind,
        subjects=subjects_from_json(subjects, "$.subject"),
        predicate=predicate,
        size=size,
    )


def _subject(value: Any, path: str) -> Subject:
    subject = j.as_object(value, path)
    return Subject(
        name=j.opt_str(subject, "name", path),
        digests=j.str_map(j.req_object(subject, "digest", path), f"{path}.digest"),
    )


def _decode_large(payload: bytes) -> StatementRecord:
    # Streams past the predicate, so a statement of any size costs little memory here.
    reader = EventReader(io.BytesIO(payload), "in-toto statement", max_depth=j.MAX_DEPTH)
    reader.expect_object(reader.next("$"), "$")
    header: dict[str, Any] = {}
    for key, event in reader.fields("$"):
        path = f"$.{key}"
        if key in ("_type", "predicateType", "subject"):
            header[key] = reader.value(event, path)
        else:
            reader.skip(event, path)
    reader.finish()
    return _record(
        header.get("_type"), header.get("predicateType"), header.get("subject"), None, len(payload)
    )
