"""DSSE envelopes, PAE, and in-toto Statements (small and streamed)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from catalog.errors import FormatError
from catalog.formats import dsse, intoto
from catalog.formats.records import Subject
from tests.formats.fixtures import SBOMS, slsa_image_digest, slsa_layout


def test_pae_matches_the_dsse_spec_example() -> None:
    # secure-systems-lab/dsse protocol.md: PAE("http://example.com/HelloWorld", "hello world").
    assert dsse.pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


def test_pae_counts_bytes_not_characters() -> None:
    assert dsse.pae("tÿpe", b"\x00\xff") == "DSSEv1 5 tÿpe 2 ".encode() + b"\x00\xff"


def test_slsa_container_envelope() -> None:
    layout = slsa_layout("v1.10.0")
    (layer,) = layout.json_blob(layout.attestation_manifest_digest())["layers"]
    envelope = dsse.decode_envelope(layout.blob(layer["digest"]))
    assert envelope.payload_type == "application/vnd.in-toto+json"
    (signature,) = envelope.signatures
    assert signature.keyid is None
    assert len(signature.sig) == 71
    statement = intoto.decode_statement(envelope.payload)
    assert statement.statement_type == "https://in-toto.io/Statement/v0.1"
    assert statement.predicate_type == "https://slsa.dev/provenance/v0.2"
    assert statement.subjects == (
        Subject(
            name="ghcr.io/slsa-framework/example-package.verifier-e2e.all.tag.main.default.slsa3",
            digests={"sha256": slsa_image_digest("v1.10.0").removeprefix("sha256:")},
        ),
    )
    assert statement.predicate is not None
    assert statement.predicate["invocation"]["environment"]["github_run_id"] == "8373487125"
    assert intoto.signed_digests(statement.subjects) == (slsa_image_digest("v1.10.0"),)


def test_trivy_jsonl_envelopes() -> None:
    (envelope,) = dsse.decode_envelopes_jsonl(
        (SBOMS / "trivy-centos-7.cdx.intoto.jsonl").read_bytes()
    )
    statement = intoto.decode_statement(envelope.payload)
    assert statement.predicate_type == "https://cyclonedx.org/bom"
    assert intoto.is_sbom_predicate(statement.predicate_type)
    assert statement.predicate is not None
    assert statement.predicate["specVersion"] == "1.4"
    assert intoto.signed_digests(statement.subjects) == (
        "sha256:be65f488b7764ad3638f236b7b515b3678369a5124c47b8d32916d6487418ea4",
    )


def test_jsonl_with_several_envelopes_and_blank_lines() -> None:
    line = (SBOMS / "trivy-centos-7.cdx.intoto.jsonl").read_bytes().strip()
    assert len(dsse.decode_envelopes_jsonl(line + b"\n\n" + line + b"\n")) == 2
    with pytest.raises(FormatError, match="line 3"):
        dsse.decode_envelopes_jsonl(line + b"\n\n{\n")
    with pytest.raises(FormatError, match="no envelope"):
        dsse.decode_envelopes_jsonl(b"\n \n")


def test_url_safe_unpadded_base64_is_accepted() -> None:
    payload = b'{"k": "\xfb\xff"}'
    data = json.dumps(
        {
            "payloadType": "x",
            "payload": base64.urlsafe_b64encode(payload).rstrip(b"=").decode(),
            "signatures": [{"sig": "-_8", "keyid": "k1"}],
        }
    ).encode()
    envelope = dsse.decode_envelope(data)
    assert envelope.payload == payload
    assert envelope.signatures[0].sig == b"\xfb\xff"
    assert envelope.signatures[0].keyid == "k1"


def statement(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"digest": {"sha256": "AB" * 32, "gitCommit": "c" * 40}}],
        "predicateType": "https://example.com/p/v1",
        "predicate": {"x": [1, 2.5, None, True]},
    }
    doc.update(overrides)
    return doc


def encode(doc: Any) -> bytes:
    return json.dumps(doc).encode()


def test_v1_subject_without_name_and_digest_normalised() -> None:
    record = intoto.decode_statement(encode(statement()))
    assert record.subjects == (
        Subject(name=None, digests={"sha256": "AB" * 32, "gitCommit": "c" * 40}),
    )
    assert intoto.signed_digests(record.subjects) == ("sha256:" + "ab" * 32,)
    assert record.predicate == {"x": [1, 2.5, None, True]}


def test_large_statement_streams_past_its_predicate() -> None:
    doc = statement(predicate={"packages": [{"name": f"p{i}"} for i in range(50)]})
    small = intoto.decode_statement(encode(doc))
    large = intoto.decode_statement(encode(doc), inline_limit=100)
    assert small.predicate is not None
    assert large.predicate is None
    assert (large.statement_type, large.predicate_type, large.subjects) == (
        small.statement_type,
        small.predicate_type,
        small.subjects,
    )


@pytest.mark.parametrize("inline_limit", [intoto.INLINE_LIMIT, 10])
@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            encode(statement(_type="https://in-toto.io/Statement/v9")),
            "not an in-toto Statement type",
        ),
        (encode(statement(predicateType=None)), r"\$.predicateType: expected a string, got null"),
        (encode(statement(subject={})), r"\$.subject: expected an array"),
        (encode(statement(subject=[{"name": "a"}])), r"\$.subject\[0\]: missing 'digest'"),
        (
            encode(statement(subject=[{"digest": {"sha256": 5}}])),
            r"subject\[0\].digest.sha256: expected a string",
        ),
        (encode(statement(subject=[{"digest": {}, "name": "x" * 70_000}])), "over the limit"),
        (encode(statement(subject=[{"digest": {}, "name": "a\u0000b"}])), "contains NUL"),
        (b'{"_type": "\\ud800"}', "_type"),
        (encode(statement(subject=[{"digest": {}}] * 10_001)), "more than 10000 subjects"),
        (b'{"a": ' + b"[" * 300_000, "nested deeper"),
        (b'{"a": ' + b"1" * 5000 + b"}", "not valid JSON"),
        (encode(statement()) + b"{}", "not valid JSON|after the end"),
        (encode(statement())[:-1], "not valid JSON|unexpected end"),
    ],
)
def test_hostile_statements(data: bytes, message: str, inline_limit: int) -> None:
    with pytest.raises(FormatError, match=message):
        intoto.decode_statement(data, inline_limit=inline_limit)


def test_predicate_nesting_is_bounded() -> None:
    deep: Any = {}
    for _ in range(70):
        deep = {"d": deep}
    with pytest.raises(FormatError, match="nested deeper than 64"):
        intoto.decode_statement(encode(statement(predicate=deep)))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            b'{"payloadType": "x", "payload": "", "signatures": [{}]}',
            r"signatures\[0\]: missing 'sig'",
        ),
        (
            b'{"payloadType": "x", "payload": "", "signatures": "s"}',
            "signatures: expected an array",
        ),
        (
            b'{"payloadType": 1, "payload": "", "signatures": [{"sig": ""}]}',
            "payloadType: expected a string",
        ),
        (b'{"payloadType": "x", "payload": "A", "signatures": [{"sig": ""}]}', "truncated"),
        (b'{"payloadType": "x", "payload": "", "signatures": [{"sig": "", "keyid": 3}]}', "keyid"),
    ],
)
def test_hostile_envelopes(data: bytes, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        dsse.decode_envelope(data)
