"""Sigstore bundles: all 70 conformance cases, the sigstore-python and cosign bundles."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest

from catalog.errors import FormatError
from catalog.formats import bundle, intoto, slsa
from tests.formats.fixtures import CONFORMANCE, FIXTURES

DEFAULT_IDENTITY = (
    "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/"
    ".github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main"
)
DEFAULT_ISSUER = "https://token.actions.githubusercontent.com"
# Malformed bundles: decoding itself must refuse them (the other _fail cases decode fine).
MALFORMED = {
    "bundle-malformed-json_fail": "not valid JSON",
    "bundle-invalid-base64-signature_fail": r"\$.messageSignature.signature: not base64",
    "bundle-unknown-version_fail": "unknown Sigstore bundle version",
    "bundle-negative-log-index_fail": r"tlogEntries\[0\].logIndex: must not be negative",
    "bundle-empty-certificate-chain_fail": "the certificate chain is empty",
}
OTHER_SIGNERS = {
    "bundle-with-root-cert_fail": ("a@tny.town", "https://github.com/login/oauth"),
    "integrated-time-in-future_fail": (
        "untrusted-sa@sigstore-conformance.iam.gserviceaccount.com",
        "https://accounts.google.com",
    ),
    "managed-key-and-trusted-root": (None, None),
    "managed-key-happy-path": (None, None),
    "managed-key-no-key_fail": (None, None),
    "managed-key-wrong-key_fail": (None, None),
}
# Cases whose bundle signs another artifact than the case's: that is what they test.
OTHER_ARTIFACT = {"message-digest-mismatch_fail", "wrong-material_fail"}
CASES = sorted(p.name for p in CONFORMANCE.iterdir() if (p / "bundle.sigstore.json").is_file())


def test_the_whole_suite_is_here() -> None:
    assert len(CASES) == 70


def artifact_digest(case: str) -> str:
    own = CONFORMANCE / case / "artifact"
    data = (own if own.is_file() else CONFORMANCE / "a.txt").read_bytes()
    return "sha256:" + hashlib.sha256(data).hexdigest()


def raw(case: str) -> Any:
    return json.loads((CONFORMANCE / case / "bundle.sigstore.json").read_bytes())


@pytest.mark.parametrize("case", CASES)
def test_conformance_bundle(case: str) -> None:
    data = (CONFORMANCE / case / "bundle.sigstore.json").read_bytes()
    if case in MALFORMED:
        with pytest.raises(FormatError, match=MALFORMED[case]):
            bundle.decode_bundle(data)
        return
    record = bundle.decode_bundle(data)
    doc = json.loads(data)

    assert record.format == "sigstore-bundle"
    assert record.media_type == doc["mediaType"]
    assert (record.identity, record.issuer) == OTHER_SIGNERS.get(
        case, (DEFAULT_IDENTITY, DEFAULT_ISSUER)
    )
    if case in OTHER_ARTIFACT:
        assert record.signed_digests != (artifact_digest(case),)
    else:
        assert record.signed_digests == (artifact_digest(case),)
    assert record.signature

    entries = doc["verificationMaterial"].get("tlogEntries", [])
    assert len(record.tlog_entries) == len(entries)
    for entry, source in zip(record.tlog_entries, entries, strict=True):
        assert entry.kind == source["kindVersion"]["kind"]
        assert entry.version == source["kindVersion"]["version"]
        assert entry.log_index == int(source["logIndex"])
        assert entry.log_id == base64.b64decode(source["logId"]["keyId"]).hex()
        assert entry.has_inclusion_proof == ("inclusionProof" in source)
        assert (entry.signed_entry_timestamp is not None) == ("inclusionPromise" in source)
        assert entry.body == base64.b64decode(source["canonicalizedBody"])
        if "integratedTime" in source:
            assert entry.integrated_time == int(source["integratedTime"])
    timestamps = doc["verificationMaterial"].get("timestampVerificationData", {})
    assert len(record.rfc3161_timestamps) == len(timestamps.get("rfc3161Timestamps", []))

    if "dsseEnvelope" in doc:
        assert record.payload_type == intoto.PAYLOAD_TYPE
        assert record.payload == base64.b64decode(doc["dsseEnvelope"]["payload"])
        assert record.statement is not None
        assert record.statement.predicate_type == slsa.PROVENANCE_V1
    else:
        assert record.payload is None
        assert record.statement is None


def test_v01_chain_puts_leaf_first_and_the_rest_in_chain() -> None:
    record = bundle.decode_bundle(
        (CONFORMANCE / "happy-path-v0.1" / "bundle.sigstore.json").read_bytes()
    )
    certificates = raw("happy-path-v0.1")["verificationMaterial"]["x509CertificateChain"][
        "certificates"
    ]
    assert len(record.chain_pem) == len(certificates) - 1


def test_managed_key_bundle_carries_the_key_hint() -> None:
    record = bundle.decode_bundle(
        (CONFORMANCE / "managed-key-happy-path" / "bundle.sigstore.json").read_bytes()
    )
    assert record.key_id == "TLMsSDfG3ajPsWge+z/vX5T/zluXnmvbkTkwLIV68Tk="
    assert record.certificate_pem is None
    assert record.chain_pem == ()


def test_rekor_v2_entry_has_proof_but_no_promise_or_time() -> None:
    record = bundle.decode_bundle(
        (CONFORMANCE / "rekor2-happy-path" / "bundle.sigstore.json").read_bytes()
    )
    (entry,) = record.tlog_entries
    assert (entry.kind, entry.version) == ("hashedrekord", "0.0.2")
    assert entry.has_inclusion_proof
    assert entry.signed_entry_timestamp is None
    assert entry.integrated_time is None
    assert len(record.rfc3161_timestamps) == 1


def test_sigstore_python_v02_bundle() -> None:
    folder = FIXTURES / "sigstore-python"
    record = bundle.decode_bundle((folder / "bundle_v3_github.whl.sigstore").read_bytes())
    wheel = (folder / "bundle_v3_github.whl").read_bytes()

    assert record.media_type == "application/vnd.dev.sigstore.bundle+json;version=0.2"
    assert record.identity == (
        "https://github.com/trailofbits/rfc8785.py/.github/workflows/release.yml@refs/tags/v0.1.2"
    )
    assert record.issuer == "https://token.actions.githubusercontent.com"
    assert record.signed_digests == ("sha256:" + hashlib.sha256(wheel).hexdigest(),)
    # Both encodings of the same claims: v1 raw strings and v2 DER UTF8Strings.
    assert record.extensions["issuer"] == record.extensions["issuer_v2"] == record.issuer
    assert record.extensions["github_workflow_repository"] == "trailofbits/rfc8785.py"
    assert record.extensions["github_workflow_ref"] == "refs/tags/v0.1.2"
    assert record.extensions["github_workflow_sha"] == "d8b4a6445f38c48b9137a8099706d9b8073146e4"
    assert record.extensions["source_repository_uri"] == "https://github.com/trailofbits/rfc8785.py"
    assert record.extensions["source_repository_digest"] == record.extensions["github_workflow_sha"]
    assert record.extensions["build_signer_uri"] == record.identity
    assert record.extensions["run_invocation_uri"] == (
        "https://github.com/trailofbits/rfc8785.py/actions/runs/8351058501/attempts/1"
    )
    assert record.extensions["source_repository_visibility_at_signing"] == "public"
    assert len(record.extensions) == 21
    (entry,) = record.tlog_entries
    assert entry.log_index == 79605083
    assert entry.kind == "hashedrekord"


def test_cosign_oci_attestation_bundle() -> None:
    record = bundle.decode_bundle(
        (FIXTURES / "cosign-bundle" / "oci-attestation.sigstore.json").read_bytes()
    )
    assert record.media_type == "application/vnd.dev.sigstore.bundle.v0.3+json"
    assert record.identity == "cody@soyland.com"
    assert record.issuer == "https://github.com/login/oauth"
    assert record.signed_digests == (
        "sha256:732112270d7e59418a8c080b134b24cabd67d250d0d0147a97ed95ba5c280aa4",
    )
    assert record.statement is not None
    assert record.statement.predicate_type == "https://cosign.sigstore.dev/attestation/v1"
    assert record.statement.predicate == {
        "Data": '{"foo": "bar"}\n',
        "Timestamp": "2025-02-28T19:18:11Z",
    }
    assert record.statement.subjects[0].name == "127.0.0.1:60943/repo"
    (entry,) = record.tlog_entries
    assert (entry.kind, entry.log_index, entry.integrated_time) == ("dsse", 175508996, 1740770291)


def mutate(case: str, change: Any) -> bytes:
    doc = raw(case)
    change(doc)
    return json.dumps(doc).encode()


def _set(path: list[Any], value: Any) -> Any:
    def change(doc: Any) -> None:
        for key in path[:-1]:
            doc = doc[key]
        doc[path[-1]] = value

    return change


def _delete(*path: Any) -> Any:
    def change(doc: Any) -> None:
        for key in path[:-1]:
            doc = doc[key]
        del doc[path[-1]]

    return change


VM = "verificationMaterial"


@pytest.mark.parametrize(
    ("case", "change", "message"),
    [
        ("happy-path-v0.3", _set(["mediaType"], 3), r"\$.mediaType: expected a string"),
        ("happy-path-v0.3", _delete(VM), "missing 'verificationMaterial'"),
        ("happy-path-v0.3", _set([VM], []), r"\$.verificationMaterial: expected an object"),
        ("happy-path-v0.3", _set([VM, "certificate", "rawBytes"], "AAAA"), "not a valid X.509"),
        (
            "happy-path-v0.3",
            _delete(VM, "certificate"),
            "no certificate, certificate chain or public key",
        ),
        ("happy-path-v0.3", _set([VM, "tlogEntries"], {}), "tlogEntries: expected an array"),
        ("happy-path-v0.3", _set([VM, "tlogEntries", 0, "logIndex"], "1e3"), "expected an integer"),
        ("happy-path-v0.3", _set([VM, "tlogEntries", 0, "logIndex"], True), "expected an integer"),
        (
            "happy-path-v0.3",
            _set([VM, "tlogEntries", 0, "logIndex"], str(2**64)),
            "expected an integer",
        ),
        (
            "happy-path-v0.3",
            _set([VM, "tlogEntries", 0, "logId"], "x"),
            r"logId: expected an object",
        ),
        ("happy-path-v0.3", _set([VM, "tlogEntries", 0, "canonicalizedBody"], "%%"), "not base64"),
        ("happy-path-v0.3", _set([VM, "tlogEntries"], [{}] * 65), "more than 64 entries"),
        ("happy-path-v0.3", _set(["dsseEnvelope"], {}), "exactly one of messageSignature"),
        ("happy-path-v0.3", _delete("messageSignature"), "exactly one of messageSignature"),
        (
            "happy-path-v0.3",
            _set(["messageSignature", "messageDigest", "digest"], 1),
            "expected a string",
        ),
        ("happy-path-intoto-in-dsse-v3", _set(["dsseEnvelope", "signatures"], []), "no signatures"),
        ("happy-path-intoto-in-dsse-v3", _set(["dsseEnvelope", "payload"], "e30="), r"\$._type"),
        (
            "happy-path-intoto-in-dsse-v3",
            _set(["dsseEnvelope", "payload"], base64.b64encode(b'{"_type": "x"}').decode()),
            "not an in-toto Statement type",
        ),
        (
            "rekor2-happy-path",
            _set([VM, "timestampVerificationData", "rfc3161Timestamps", 0], "x"),
            r"rfc3161Timestamps\[0\]: expected an object",
        ),
    ],
)
def test_hostile_bundles(case: str, change: Any, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        bundle.decode_bundle(mutate(case, change))


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"null",
        b"[]",
        b'"x"',
        b"{" * 5000,
        b"[" * 200_000,
        b'{"mediaType": NaN}',
        "é".encode("latin-1"),
    ],
)
def test_not_a_bundle(data: bytes) -> None:
    with pytest.raises(FormatError):
        bundle.decode_bundle(data)


def test_unknown_hash_algorithm_signs_nothing_we_can_match() -> None:
    data = mutate(
        "happy-path-v0.3", _set(["messageSignature", "messageDigest", "algorithm"], "SHA3_256")
    )
    assert bundle.decode_bundle(data).signed_digests == ()
