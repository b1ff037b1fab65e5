"""Realistic verification results for policy tests, and checks that they match real material.

The values come from the shared fixtures: the slsa-github-generator v1.10.0 container
attestation (Fulcio certificate, Rekor entry, SLSA v0.2 provenance) and containers/image's cosign
signatures (``mitr@redhat.com`` keyless, ``cosign.pub`` / ``cosign2.pub`` key pairs). The tests
below decode the fixtures to prove the hand-written values are what the decoders really produce.
"""

from __future__ import annotations

from catalog.formats import certs, cosign, slsa
from catalog.trust.policy.compiled import pem_fingerprint
from catalog.trust.policy.facts import AttestationFacts, ImageFacts, ProvenanceFacts
from catalog.trust.policy.model import FULCIO_EXTENSIONS
from catalog.trust.signatures import VerifiedSignature
from tests.formats.fixtures import COSIGN_LEGACY, slsa_image_digest, slsa_layout

IMAGE = "sha256:e0a0a765d690a5104331cfbac88ebbbf01736c1f87aaa3cd455c516a5ea586a5"
OTHER_IMAGE = "sha256:0489474da8ea22426ece86ace6c1c0026ab2fd3cdfbbd62b7e94650266c37d9a"
SLSA_REFERENCE = "ghcr.io/slsa-framework/example-package.verifier-e2e.all.tag.main.default.slsa3"
SLSA_ATT_MANIFEST = "sha256:31cc4fb663c8d34e2e6a0bd5f183d576c2811ee286e0998b4c2965e3b35a0d86"
SLSA_DSSE_LAYER = "sha256:20b16d5835eceaa7b9dbb7e4fdf4db52a8b9159c1416dd73e54cade07e838917"

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
GENERATOR = (
    "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/"
    "generator_container_slsa3.yml@refs/tags/v1.10.0"
)
EXAMPLE_PACKAGE = "https://github.com/slsa-framework/example-package"
SLSA_V02 = "https://slsa.dev/provenance/v0.2"
CONTAINER_BUILD_TYPE = "https://github.com/slsa-framework/slsa-github-generator/container@v1"
ENTRY_POINT = ".github/workflows/verifier-e2e.all.workflow_dispatch.main.all.slsa3.yml"
REKOR_LOG_ID = "c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d"
GENERATOR_EXTENSIONS = {
    "issuer": GITHUB_ISSUER,
    "github_workflow_trigger": "push",
    "github_workflow_sha": "d37a7f740ee7404914456f24dcd90e865a0509e8",
    "github_workflow_name": ENTRY_POINT,
    "github_workflow_repository": "slsa-framework/example-package",
    "github_workflow_ref": "refs/tags/v13.0.30",
    "issuer_v2": GITHUB_ISSUER,
    "build_signer_uri": GENERATOR,
    "build_signer_digest": "c747fe7769adf3656dc7d588b161cb614d7abfee",
    "runner_environment": "github-hosted",
    "source_repository_uri": EXAMPLE_PACKAGE,
    "source_repository_digest": "d37a7f740ee7404914456f24dcd90e865a0509e8",
    "source_repository_ref": "refs/tags/v13.0.30",
    "source_repository_identifier": "486325809",
    "source_repository_owner_uri": "https://github.com/slsa-framework",
    "source_repository_owner_identifier": "80431187",
    "build_config_uri": f"{EXAMPLE_PACKAGE}/{ENTRY_POINT}@refs/tags/v13.0.30",
    "build_config_digest": "d37a7f740ee7404914456f24dcd90e865a0509e8",
    "build_trigger": "push",
    "run_invocation_uri": f"{EXAMPLE_PACKAGE}/actions/runs/8373487125/attempts/1",
    "source_repository_visibility_at_signing": "public",
}

MITR = "mitr@redhat.com"
GITHUB_OAUTH = "https://github.com/login/oauth"
COSIGN_PUB = (COSIGN_LEGACY / "cosign.pub").read_text()
COSIGN_PUB_FP = "c87a79018f346cc02482448b77296b0bea143ef2ccab99b04776fb0f638f301f"
COSIGN2_PUB_FP = "5e7eb6c1e2e6db06470ae59ee8253b3dc4ce33beefb9a0cca06a371cfc0ebdfa"
TRUST_VERSION = "trust-7"


def keyless(
    identity: str = GENERATOR,
    issuer: str = GITHUB_ISSUER,
    *,
    extensions: dict[str, str] | None = None,
    verified: bool = True,
    reason: str = "verified: Fulcio chain to sigstore:production, Rekor entry 80008005",
    attachment: str = "sha256:" + "a1" * 32,
    log_index: int | None = 80008005,
    integrated_time: int | None = 1711017244,
    signed: tuple[str, ...] = (IMAGE,),
    predicate_type: str | None = None,
) -> VerifiedSignature:
    return VerifiedSignature(
        attachment_digest=attachment,
        layer_digest="sha256:" + "b2" * 32,
        verified=verified,
        reason=reason,
        method="keyless",
        trust_root="sigstore:production",
        trust_version=TRUST_VERSION,
        identity=identity,
        issuer=issuer,
        extensions=dict(GENERATOR_EXTENSIONS if extensions is None else extensions),
        log_index=log_index,
        log_id=REKOR_LOG_ID if log_index is not None else None,
        integrated_time=integrated_time,
        predicate_type=predicate_type,
        signed_digests=signed,
    )


def mitr(*, verified: bool = True, signed: tuple[str, ...] = (IMAGE,)) -> VerifiedSignature:
    """The containers/image fixture's keyless signature (Rekor entry 11605770, 2023-01-20)."""
    return keyless(
        MITR,
        GITHUB_OAUTH,
        extensions={"issuer": GITHUB_OAUTH},
        verified=verified,
        reason="verified" if verified else "certificate chain does not lead to a trusted root",
        attachment="sha256:" + "c3" * 32,
        log_index=11605770,
        integrated_time=1674247893,
        signed=signed,
    )


def key(
    fingerprint: str = COSIGN_PUB_FP,
    *,
    log_index: int | None = None,
    verified: bool = True,
    attachment: str = "sha256:" + "d4" * 32,
) -> VerifiedSignature:
    return VerifiedSignature(
        attachment_digest=attachment,
        layer_digest="sha256:" + "e5" * 32,
        verified=verified,
        reason="verified with key" if verified else "signature does not verify with any key",
        method="key",
        trust_root=f"key:{fingerprint}",
        trust_version=TRUST_VERSION,
        key_fingerprint=fingerprint,
        log_index=log_index,
        log_id=REKOR_LOG_ID if log_index is not None else None,
        integrated_time=1674251859 if log_index is not None else None,
        signed_digests=(IMAGE,),
    )


def pki(root: str = "acme-corp", *, log_index: int | None = None) -> VerifiedSignature:
    return VerifiedSignature(
        attachment_digest="sha256:" + "f6" * 32,
        layer_digest="sha256:" + "07" * 32,
        verified=True,
        reason="verified: chain to pki:" + root,
        method="pki",
        trust_root=f"pki:{root}",
        trust_version=TRUST_VERSION,
        identity="CN=release-signer,O=Acme Corp",
        log_index=log_index,
        signed_digests=(IMAGE,),
    )


def provenance(
    builder_id: str = GENERATOR,
    *,
    source: str = EXAMPLE_PACKAGE,
    ref: str = "refs/tags/v13.0.30",
    build_type: str = CONTAINER_BUILD_TYPE,
    entry_point: str = ENTRY_POINT,
) -> ProvenanceFacts:
    return ProvenanceFacts(
        builder_id=builder_id,
        build_type=build_type,
        source_uri=source,
        source_digest="d37a7f740ee7404914456f24dcd90e865a0509e8",
        source_ref=ref,
        entry_point=entry_point,
    )


def slsa_attestation(
    prov: ProvenanceFacts | None = None,
    *,
    signature: VerifiedSignature | None = None,
    predicate_type: str = SLSA_V02,
) -> AttestationFacts:
    sig = signature or keyless(attachment=SLSA_ATT_MANIFEST, predicate_type=predicate_type)
    return AttestationFacts(sig, predicate_type, prov if prov is not None else provenance())


def image(
    reference: str | None = "registry.acme.io/shop/api:1.4",
    *,
    signatures: tuple[VerifiedSignature, ...] = (),
    attestations: tuple[AttestationFacts, ...] = (),
    sboms: int = 0,
    digest: str = IMAGE,
) -> ImageFacts:
    return ImageFacts(digest, reference, signatures, attestations, sboms)


def fixture_attestation() -> tuple[str, AttestationFacts]:
    """The real slsa-github-generator attestation, as the verifier reports it once verified."""
    layout = slsa_layout("v1.10.0")
    manifest_digest = layout.attestation_manifest_digest()
    (layer,) = layout.json_blob(manifest_digest)["layers"]
    record = cosign.decode_cosign_attestation(layout.blob(layer["digest"]), layer["annotations"])
    assert record.statement is not None
    (entry,) = record.tlog_entries
    decoded = slsa.decode_provenance(record.statement)
    signature = VerifiedSignature(
        attachment_digest=manifest_digest,
        layer_digest=layer["digest"],
        verified=True,  # what the verifier says of it; verification itself is not tested here
        reason="verified: Fulcio chain to sigstore:production, Rekor SET",
        method="keyless",
        trust_root="sigstore:production",
        trust_version=TRUST_VERSION,
        identity=record.identity,
        issuer=record.issuer,
        extensions=dict(record.extensions),
        log_index=entry.log_index,
        log_id=entry.log_id,
        integrated_time=entry.integrated_time,
        predicate_type=record.statement.predicate_type,
        signed_digests=record.signed_digests,
    )
    facts = ProvenanceFacts(
        builder_id=decoded.builder_id,
        build_type=decoded.build_type,
        source_uri=decoded.source_uri,
        source_digest=decoded.source_digest,
        source_ref=decoded.source_ref,
        entry_point=decoded.entry_point,
    )
    return slsa_image_digest("v1.10.0"), AttestationFacts(
        signature, record.statement.predicate_type, facts
    )


# --- the hand-written values are the real ones ----------------------------------------------


def test_hand_written_generator_facts_match_the_real_attestation() -> None:
    digest, real = fixture_attestation()
    assert digest == IMAGE
    made = slsa_attestation()
    assert real.predicate_type == made.predicate_type == SLSA_V02
    assert real.provenance == made.provenance
    assert real.signature.identity == made.signature.identity == GENERATOR
    assert real.signature.issuer == GITHUB_ISSUER
    assert real.signature.extensions == GENERATOR_EXTENSIONS
    assert real.signature.log_index == 80008005
    assert real.signature.integrated_time == 1711017244
    assert real.signature.attachment_digest == SLSA_ATT_MANIFEST
    assert real.signature.layer_digest == SLSA_DSSE_LAYER
    assert IMAGE in real.signature.signed_digests


def test_fulcio_extension_names_are_the_decoders_names() -> None:
    # A policy naming an extension the decoder never produces could never match: keep in step.
    decoder_names = set(certs._V1_NAMES.values()) | set(certs._V2_NAMES.values())
    assert decoder_names == FULCIO_EXTENSIONS


def test_key_fingerprints_are_sha256_of_the_spki() -> None:
    assert pem_fingerprint(COSIGN_PUB) == COSIGN_PUB_FP
    assert pem_fingerprint((COSIGN_LEGACY / "cosign2.pub").read_text()) == COSIGN2_PUB_FP
