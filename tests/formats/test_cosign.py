"""cosign legacy layers: the containers/image signature fixtures and the slsa-container .att."""

from __future__ import annotations

import hashlib
import json

import pytest

from catalog.errors import FormatError
from catalog.formats import cosign, intoto
from catalog.formats.certs import from_pem
from tests.formats.fixtures import COSIGN_LEGACY, sigstore_json, slsa_image_digest, slsa_layout

REKOR_LOG_ID = "c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d"
SIMPLE_SAMPLE = "sha256:634a8f35b5f16dcf4aaa0822adc0b1964bb786fca12f6831de8ddc45e5986a00"


def manifest_digest(case: str) -> str:
    return (
        "sha256:"
        + hashlib.sha256((COSIGN_LEGACY / case / "manifest.json").read_bytes()).hexdigest()
    )


def test_keyless_fulcio_rekor_signature() -> None:
    layer = sigstore_json(COSIGN_LEGACY / "dir-img-cosign-fulcio-rekor-valid" / "signature-1")
    record = cosign.decode_cosign_signature(layer.payload, layer.annotations)

    assert record.format == "cosign"
    assert (
        record.media_type == layer.media_type == "application/vnd.dev.cosign.simplesigning.v1+json"
    )
    assert record.payload == layer.payload
    assert record.identity == "mitr@redhat.com"
    assert record.issuer == "https://github.com/login/oauth"
    assert record.extensions == {"issuer": "https://github.com/login/oauth"}
    assert record.signed_digests == (manifest_digest("dir-img-cosign-fulcio-rekor-valid"),)
    assert record.signed_digests == (
        "sha256:0489474da8ea22426ece86ace6c1c0026ab2fd3cdfbbd62b7e94650266c37d9a",
    )
    assert record.docker_reference == "192.168.64.2:5000/cosign-signed/fulcio-rekor-1"
    assert record.signature is not None
    assert record.signature[:2] == b"\x30\x44"
    assert record.certificate_pem is not None
    assert record.certificate_pem.startswith(
        "-----BEGIN CERTIFICATE-----\nMIICnjCCAiWgAwIBAgIUYzeG"
    )
    assert len(record.chain_pem) == 2  # sigstore-intermediate, sigstore root
    assert from_pem(record.chain_pem[1], "chain").subject == "CN=sigstore,O=sigstore.dev"
    (entry,) = record.tlog_entries
    assert (entry.kind, entry.version) == ("hashedrekord", "0.0.1")
    assert entry.log_index == 11605770
    assert entry.integrated_time == 1674247893
    assert entry.log_id == REKOR_LOG_ID
    assert entry.has_inclusion_proof is False
    assert entry.signed_entry_timestamp is not None
    assert len(entry.signed_entry_timestamp) == 71
    assert entry.body is not None
    body = json.loads(entry.body)
    # The Rekor entry hashes exactly the payload bytes the record carries.
    assert body["spec"]["data"]["hash"]["value"] == hashlib.sha256(layer.payload).hexdigest()
    assert record.rfc3161_timestamps == ()
    assert record.statement is None


def test_key_pair_signature_with_rekor_bundle() -> None:
    layer = sigstore_json(COSIGN_LEGACY / "dir-img-cosign-key-rekor-valid" / "signature-1")
    record = cosign.decode_cosign_signature(layer.payload, layer.annotations)

    assert record.identity is None
    assert record.issuer is None
    assert record.certificate_pem is None
    assert record.signed_digests == (manifest_digest("dir-img-cosign-key-rekor-valid"),)
    (entry,) = record.tlog_entries
    assert (entry.log_index, entry.integrated_time) == (11608800, 1674251859)


@pytest.mark.parametrize(
    ("case", "files", "reference"),
    [
        ("dir-img-cosign-valid", 1, "192.168.64.2:5000/cosign-signed-single-sample"),
        ("dir-img-cosign-valid-2", 2, "192.168.64.2:5000/cosign-signed-single-sample"),
        ("dir-img-cosign-valid-with-tag", 1, "192.168.64.2:5000/skopeo-signed:tag"),
        (
            "dir-img-cosign-manifest-digest-error",
            1,
            "192.168.64.2:5000/cosign-signed-single-sample",
        ),
        ("dir-img-cosign-modified-manifest", 1, "192.168.64.2:5000/cosign-signed-single-sample"),
    ],
)
def test_key_pair_signatures_without_log(case: str, files: int, reference: str) -> None:
    paths = sorted((COSIGN_LEGACY / case).glob("signature-*"))
    assert len(paths) == files
    for path in paths:
        layer = sigstore_json(path)
        record = cosign.decode_cosign_signature(layer.payload, layer.annotations)
        assert record.signed_digests == (SIMPLE_SAMPLE,)
        assert record.docker_reference == reference
        assert record.tlog_entries == ()
        assert record.identity is None
        assert record.signature is not None
        assert len(record.signature) > 60


def test_negative_cases_decode_but_name_another_manifest() -> None:
    # Decoding is not verifying: the signed digest simply differs from the manifest's.
    for case in ("dir-img-cosign-manifest-digest-error", "dir-img-cosign-modified-manifest"):
        layer = sigstore_json(COSIGN_LEGACY / case / "signature-1")
        record = cosign.decode_cosign_signature(layer.payload, layer.annotations)
        assert record.signed_digests != (manifest_digest(case),)


def test_custom_pki_certificate_with_wrapped_base64_signature() -> None:
    layer = sigstore_json(COSIGN_LEGACY / "dir-img-cosign-pki-valid" / "signature-1")
    # containers/image wrote this signature annotation wrapped at 76 columns, as Go's MIME base64.
    assert "\n" in layer.annotations[cosign.SIGNATURE]
    record = cosign.decode_cosign_signature(layer.payload, layer.annotations)
    assert record.identity == "qiwan@redhat.com"
    assert record.issuer is None
    assert record.extensions == {}
    assert len(record.chain_pem) == 2
    assert record.signature is not None
    assert len(record.signature) == 512
    assert record.signed_digests == (manifest_digest("dir-img-cosign-pki-valid"),)


def test_unknown_key_signature_decodes() -> None:
    layer = sigstore_json(COSIGN_LEGACY / "unknown-cosign-key.signature")
    record = cosign.decode_cosign_signature(layer.payload, layer.annotations)
    assert record.signed_digests == (SIMPLE_SAMPLE,)


def test_other_attachment_is_not_a_signature() -> None:
    layer = sigstore_json(COSIGN_LEGACY / "dir-img-cosign-other-attachment" / "signature-1")
    assert layer.media_type == "text/plain"
    with pytest.raises(FormatError, match="cosign payload: not valid JSON"):
        cosign.decode_cosign_signature(layer.payload, layer.annotations)


@pytest.mark.parametrize("version", ["v1.10.0", "v2.0.0"])
def test_slsa_container_attestation_layer(version: str) -> None:
    layout = slsa_layout(version)
    manifest = layout.json_blob(layout.attestation_manifest_digest())
    (layer,) = manifest["layers"]
    assert layer["mediaType"] == "application/vnd.dsse.envelope.v1+json"
    annotations = layer["annotations"]
    assert annotations[cosign.SIGNATURE] == ""

    record = cosign.decode_cosign_attestation(layout.blob(layer["digest"]), annotations)

    assert record.media_type == "application/vnd.dsse.envelope.v1+json"
    assert record.payload_type == intoto.PAYLOAD_TYPE
    assert record.key_id is None  # cosign writes an empty keyid
    assert record.signed_digests == (slsa_image_digest(version),)
    workflow = (
        "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/"
        f"generator_container_slsa3.yml@refs/tags/{version}"
    )
    assert record.identity == workflow
    assert record.issuer == "https://token.actions.githubusercontent.com"
    assert record.extensions["build_signer_uri"] == workflow
    assert (
        record.extensions["source_repository_uri"]
        == "https://github.com/slsa-framework/example-package"
    )
    assert record.extensions["github_workflow_repository"] == "slsa-framework/example-package"
    assert record.extensions["github_workflow_ref"] == "refs/tags/v13.0.30"
    assert record.extensions["runner_environment"] == "github-hosted"
    (entry,) = record.tlog_entries
    assert (entry.kind, entry.version) == ("dsse", "0.0.1")
    assert entry.log_index == {"v1.10.0": 80008005, "v2.0.0": 87850616}[version]
    assert record.statement is not None
    assert record.statement.predicate_type == annotations[cosign.PREDICATE_TYPE]
    assert record.statement.statement_type == "https://in-toto.io/Statement/v0.1"


SIGNED = json.dumps(
    {
        "critical": {
            "identity": {"docker-reference": "example.com/app"},
            "image": {"docker-manifest-digest": "sha256:" + "ab" * 32},
            "type": "cosign container image signature",
        },
        "optional": None,
    }
).encode()


@pytest.mark.parametrize(
    ("payload", "annotations", "message"),
    [
        (SIGNED, {}, "dev.cosignproject.cosign/signature: missing"),
        (SIGNED, {cosign.SIGNATURE: "not base64!"}, "signature: not base64"),
        (SIGNED, {cosign.SIGNATURE: "AAAA", cosign.CERTIFICATE: "junk"}, "not a valid X.509"),
        (
            SIGNED,
            {cosign.SIGNATURE: "AAAA", cosign.CHAIN: "-----BEGIN CERTIFICATE-----\nAAAA\n"},
            "cosign/chain: not a valid X.509",
        ),
        (SIGNED, {cosign.SIGNATURE: "AAAA", cosign.BUNDLE: "{"}, "bundle: not valid JSON"),
        (SIGNED, {cosign.SIGNATURE: "AAAA", cosign.BUNDLE: "[]"}, "bundle: expected an object"),
        (
            SIGNED,
            {cosign.SIGNATURE: "AAAA", cosign.BUNDLE: '{"Payload": {"body": 5}}'},
            r"Payload.body: expected a string, got a number",
        ),
        (
            SIGNED,
            {
                cosign.SIGNATURE: "AAAA",
                cosign.BUNDLE: '{"Payload": {"body": "e30=", "logIndex": -3}}',
            },
            "logIndex: must not be negative",
        ),
        (
            SIGNED,
            {
                cosign.SIGNATURE: "AAAA",
                cosign.BUNDLE: '{"Payload": {"body": "e30=", "logID": "zz"}}',
            },
            "logID: not a hex log ID",
        ),
        (
            SIGNED,
            {cosign.SIGNATURE: "AAAA", cosign.RFC3161_TIMESTAMP: "{}"},
            "missing 'SignedRFC3161",
        ),
        (SIGNED, {cosign.SIGNATURE: 7}, "signature: expected a string"),
        (b"[" * 100_000, {cosign.SIGNATURE: "AAAA"}, "nested deeper"),
        (b'{"critical": []}', {cosign.SIGNATURE: "AAAA"}, r"\$.critical: expected an object"),
        (
            b'{"critical": {"type": "atomic container signature"}}',
            {cosign.SIGNATURE: "AAAA"},
            "not a cosign",
        ),
        (
            SIGNED.replace(b"sha256:abab", b"sha256:zzab"),
            {cosign.SIGNATURE: "AAAA"},
            "docker-manifest-digest: not a digest",
        ),
        (b"\xff\xfe{}", {cosign.SIGNATURE: "AAAA"}, "not valid JSON"),
    ],
)
def test_hostile_signature_layers(
    payload: bytes, annotations: dict[str, str], message: str
) -> None:
    with pytest.raises(FormatError, match=message):
        cosign.decode_cosign_signature(payload, annotations)


def test_minimal_signature_layer_decodes() -> None:
    record = cosign.decode_cosign_signature(SIGNED, {cosign.SIGNATURE: "AAAA"})
    assert record.signed_digests == ("sha256:" + "ab" * 32,)
    assert record.signature == b"\x00\x00\x00"


@pytest.mark.parametrize(
    ("envelope", "message"),
    [
        (b"{}", "missing 'payload'"),
        (b'{"payload": "e30=", "payloadType": "x", "signatures": []}', "no signatures"),
        (
            b'{"payload": "e30=", "payloadType": "application/vnd.in-toto+json",'
            b' "signatures": [{"sig": "AAAA"}]}',
            r"\$._type: expected a string, got null",
        ),
        (
            b'{"payload": "@@", "payloadType": "x", "signatures": [{"sig": "AAAA"}]}',
            "payload: not base64",
        ),
    ],
)
def test_hostile_attestation_layers(envelope: bytes, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        cosign.decode_cosign_attestation(envelope, {})
