"""cosign legacy layers, offline: keyless (Fulcio + Rekor SET), key pairs, PKI, and tampering."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from catalog.errors import InvalidArgument
from catalog.trust import roots
from catalog.trust.roots import TrustConfig
from catalog.trust.verify import verify_layer
from tests.formats.fixtures import COSIGN_LEGACY, CosignLayer, sigstore_json
from tests.trust.verify_support import (
    ATTACHMENT,
    KEYLESS_IDENTITY,
    KEYLESS_ISSUER,
    KEYLESS_TIME,
    SIMPLE_SAMPLE,
    cosign_layer,
    legacy_keys,
    linuxera_pki,
    manifest_digest,
    production,
    root_with,
    verify_cosign,
)

KEYLESS = "dir-img-cosign-fulcio-rekor-valid"
BUNDLE = "dev.sigstore.cosign/bundle"
SIGNATURE = "dev.cosignproject.cosign/signature"


def keyless() -> tuple[CosignLayer, str]:
    return cosign_layer(KEYLESS), manifest_digest(KEYLESS)


def with_annotation(layer: CosignLayer, key: str, value: str) -> CosignLayer:
    return replace(layer, annotations={**layer.annotations, key: value})


def edit_bundle(layer: CosignLayer, change: Any) -> CosignLayer:
    bundle = json.loads(layer.annotations[BUNDLE])
    change(bundle)
    return with_annotation(layer, BUNDLE, json.dumps(bundle))


def production_root_with(tmp_path: Path, change: Any) -> TrustConfig:
    path = root_with(tmp_path / "root.json", roots.sigstore_instance("production").path, change)
    return TrustConfig(sigstore=(roots.trusted_root_file("edited", path),))


def test_keyless_signature_verifies_offline_against_production() -> None:
    layer, subject = keyless()
    trust = production()

    result = verify_cosign(layer, subject, trust)

    assert result.verified, result.reason
    assert result.method == "keyless"
    assert result.trust_root == "sigstore:production"
    assert result.trust_version == trust.version
    assert result.identity == KEYLESS_IDENTITY
    assert result.issuer == KEYLESS_ISSUER
    assert result.extensions == {"issuer": KEYLESS_ISSUER}
    assert result.log_index == 11605770
    assert result.integrated_time == 1674247893
    assert result.log_id == "c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d"
    assert result.signed_digests == (subject,)
    assert result.attachment_digest == ATTACHMENT
    assert result.layer_digest.startswith("sha256:")
    assert result.key_fingerprint is None
    assert result.predicate_type is None
    assert KEYLESS_TIME in result.reason


def test_keyless_signature_for_another_digest_fails() -> None:
    layer, subject = keyless()
    other = subject[:-4] + ("0000" if not subject.endswith("0000") else "1111")

    result = verify_cosign(layer, other, production())

    assert not result.verified
    assert result.reason == (
        f"signature is for another digest: payload names {subject}, not {other}"
    )
    assert result.trust_root is None


def test_subject_digest_must_be_a_digest() -> None:
    layer, _ = keyless()
    with pytest.raises(InvalidArgument, match="not a manifest digest"):
        verify_cosign(layer, "latest", production())


def test_keyless_with_a_tampered_set_fails() -> None:
    layer, subject = keyless()
    flipped = edit_bundle(
        layer,
        lambda b: b["Payload"].update(integratedTime=b["Payload"]["integratedTime"] + 1),
    )

    result = verify_cosign(flipped, subject, production())

    assert not result.verified
    assert result.method == "keyless"
    assert result.reason == "SET does not verify against any Rekor key of sigstore:production"


def test_keyless_with_another_signature_fails() -> None:
    layer, subject = keyless()
    other = cosign_layer("dir-img-cosign-valid").annotations[SIGNATURE]

    result = verify_cosign(with_annotation(layer, SIGNATURE, other), subject, production())

    assert not result.verified
    assert result.reason == "signature does not verify with the certificate's key"


def test_keyless_needs_the_log_that_wrote_it() -> None:
    layer, subject = keyless()

    staging = verify_cosign(
        layer, subject, TrustConfig(sigstore=(roots.sigstore_instance("staging"),))
    )
    nothing = verify_cosign(layer, subject, TrustConfig(keys=legacy_keys()))

    assert not staging.verified
    assert staging.reason == (
        "transparency-log entry is from Rekor log "
        "c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d, "
        "in no trusted root (sigstore:staging)"
    )
    assert not nothing.verified
    assert "no Sigstore or PKI root is configured" in nothing.reason


def test_keyless_chain_is_checked_at_the_integrated_time(tmp_path: Path) -> None:
    """A Fulcio CA no longer trusted at signing time fails, whatever "now" is."""
    layer, subject = keyless()

    def end_cas(doc: dict[str, Any]) -> None:
        for ca in doc["certificateAuthorities"]:
            ca["validFor"]["end"] = "2022-12-31T23:59:59Z"

    result = verify_cosign(layer, subject, production_root_with(tmp_path, end_cas))

    assert not result.verified
    assert result.reason.startswith(
        f"certificate chain does not lead to a trusted Fulcio CA of trusted-root:edited at "
        f"{KEYLESS_TIME}"
    )


def test_keyless_chain_must_reach_this_roots_fulcio(tmp_path: Path) -> None:
    layer, subject = keyless()
    staging = json.loads(roots.sigstore_instance("staging").data)

    def staging_fulcio(doc: dict[str, Any]) -> None:
        doc["certificateAuthorities"] = staging["certificateAuthorities"]

    result = verify_cosign(layer, subject, production_root_with(tmp_path, staging_fulcio))

    assert not result.verified
    assert result.reason.startswith(
        f"certificate chain does not lead to a trusted Fulcio CA of trusted-root:edited at "
        f"{KEYLESS_TIME} ("
    )


def test_keyless_sct_must_verify(tmp_path: Path) -> None:
    layer, subject = keyless()

    result = verify_cosign(
        layer, subject, production_root_with(tmp_path, lambda doc: doc.update(ctlogs=[]))
    )

    assert not result.verified
    assert result.reason.startswith(
        "SCT does not verify against any CT log of trusted-root:edited: SCT is from unknown CT log"
    )


def test_keyless_rekor_key_must_be_trusted_at_the_integrated_time(tmp_path: Path) -> None:
    layer, subject = keyless()

    def retire_rekor(doc: dict[str, Any]) -> None:
        doc["tlogs"][0]["publicKey"]["validFor"]["end"] = "2022-01-01T00:00:00Z"

    result = verify_cosign(layer, subject, production_root_with(tmp_path, retire_rekor))

    assert not result.verified
    assert result.reason == (
        "Rekor key https://rekor.sigstore.dev of trusted-root:edited was not trusted at the "
        f"integrated time {KEYLESS_TIME}"
    )


def test_keyless_without_its_chain_annotation_still_verifies() -> None:
    """The trusted root holds the intermediate; the annotation only helps build the path."""
    layer, subject = keyless()
    bare = replace(
        layer,
        annotations={
            k: v for k, v in layer.annotations.items() if k != "dev.sigstore.cosign/chain"
        },
    )
    assert verify_cosign(bare, subject, production()).verified


@pytest.mark.parametrize(
    ("case", "name", "key"),
    [
        ("dir-img-cosign-valid", "signature-1", "cosign"),
        ("dir-img-cosign-valid-2", "signature-1", "cosign"),
        ("dir-img-cosign-valid-2", "signature-2", "cosign"),
        ("dir-img-cosign-valid-with-tag", "signature-1", "cosign"),
        ("dir-img-cosign-key-rekor-valid", "signature-1", "cosign2"),
    ],
)
def test_key_pair_signatures_verify_with_their_key_only(case: str, name: str, key: str) -> None:
    layer, subject = cosign_layer(case, name), manifest_digest(case)
    mine, other = (
        [k for k in legacy_keys() if k.name == key],
        [k for k in legacy_keys() if k.name != key],
    )

    good = verify_cosign(layer, subject, production(keys=tuple(mine)))
    bad = verify_cosign(layer, subject, production(keys=tuple(other)))

    assert good.verified, good.reason
    assert good.method == "key"
    assert good.trust_root == f"key:{key}"
    assert good.key_fingerprint == mine[0].fingerprint
    assert good.identity is None
    assert not bad.verified
    assert bad.method == "key"
    assert bad.reason == f"signature does not verify with key {other[0].name}"


def test_key_pair_signature_with_rekor_set_verifies_the_set() -> None:
    case = "dir-img-cosign-key-rekor-valid"
    layer, subject = cosign_layer(case), manifest_digest(case)
    keys = legacy_keys()

    good = verify_cosign(layer, subject, production(keys=keys))
    tampered = edit_bundle(layer, lambda b: b["Payload"].update(logIndex=1))
    bad_set = verify_cosign(tampered, subject, production(keys=keys))
    no_root = verify_cosign(layer, subject, TrustConfig(keys=keys))

    assert good.verified, good.reason
    assert good.trust_root == "key:cosign2"
    assert (good.log_index, good.integrated_time) == (11608800, 1674251859)
    assert "Rekor entry 11608800 of sigstore:production verifies" in good.reason
    assert not bad_set.verified
    assert bad_set.reason == "SET does not verify against any Rekor key of sigstore:production"
    # A log entry that is there must verify: without a Rekor key to check it, it cannot.
    assert not no_root.verified
    assert no_root.reason.endswith("in no trusted root (none configured)")


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("dir-img-cosign-modified-manifest", "signature is for another digest: payload names "),
        ("dir-img-cosign-manifest-digest-error", "signature is for another digest: payload names "),
        ("dir-img-cosign-other-attachment", "layer media type 'text/plain' is not a signature"),
    ],
)
def test_negative_fixtures_fail_saying_why(case: str, reason: str) -> None:
    result = verify_cosign(
        cosign_layer(case), manifest_digest(case), production(keys=legacy_keys())
    )

    assert not result.verified
    assert result.reason.startswith(reason)
    assert result.method is None  # nothing cryptographic was worth trying


def test_unknown_key_signature_fails() -> None:
    layer = sigstore_json(COSIGN_LEGACY / "unknown-cosign-key.signature")

    result = verify_cosign(layer, SIMPLE_SAMPLE, production(keys=legacy_keys()))

    assert not result.verified
    assert result.reason == "signature does not verify with any configured key (cosign, cosign2)"


def test_pki_signature_verifies_with_the_pki_roots() -> None:
    case = "dir-img-cosign-pki-valid"
    layer, subject = cosign_layer(case), manifest_digest(case)

    good = verify_cosign(layer, subject, TrustConfig(pki=(linuxera_pki(),)))
    keyless_only = verify_cosign(layer, subject, production())

    assert good.verified, good.reason
    assert good.method == "pki"
    assert good.trust_root == "pki:linuxera"
    assert good.identity == "qiwan@redhat.com"
    assert not keyless_only.verified
    assert "no transparency-log entry" in keyless_only.reason


def test_pki_signature_fails_with_another_pki(tmp_path: Path) -> None:
    case = "dir-img-cosign-pki-valid"
    layer, subject = cosign_layer(case), manifest_digest(case)
    # The Fulcio intermediate of another fixture is a CA, but not this signature's.
    chain = cosign_layer(KEYLESS).annotations["dev.sigstore.cosign/chain"]
    other = roots.pki_root("other", chain.encode())

    result = verify_cosign(layer, subject, TrustConfig(pki=(other,)))

    assert not result.verified
    assert result.method == "pki"
    assert result.reason.startswith("certificate chain does not lead to a trusted CA of pki:other")


def test_malformed_layer_fails_with_the_decoder_reason() -> None:
    layer, subject = keyless()
    broken = with_annotation(layer, SIGNATURE, "not base64!")

    result = verify_cosign(broken, subject, production())

    assert not result.verified
    assert result.reason.startswith("not a valid cosign signature layer: ")


def test_layer_digest_defaults_to_the_layer_sha256() -> None:
    layer, subject = keyless()
    default = verify_cosign(layer, subject, production())
    given = verify_layer(
        layer.media_type,
        layer.payload,
        layer.annotations,
        subject,
        production(),
        attachment_digest=ATTACHMENT,
        layer_digest="sha256:" + "b" * 64,
    )
    assert default.layer_digest == "sha256:" + hashlib.sha256(layer.payload).hexdigest()
    assert given.layer_digest == "sha256:" + "b" * 64
