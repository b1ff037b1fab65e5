"""Pure decoders: signature, attestation and SBOM documents (bytes in) → plain records out.

No network, no SQL, no file paths; bad input raises ``catalog.errors.FormatError`` saying what
is wrong and where (a JSON path). Modules, one job each:

- ``records``: the frozen dataclasses every decoder returns;
- ``classify``: which kind an attachment manifest is, and which decoder reads each layer;
- ``cosign``: legacy ``.sig`` / ``.att`` layers with their annotations;
- ``bundle``: Sigstore bundles v0.1 to v0.3;
- ``notation``: Notary Project signatures (JWS decoded; COSE metadata only);
- ``dsse`` / ``intoto``: DSSE envelopes, PAE, in-toto Statements;
- ``slsa``: SLSA provenance v0.2 / v1;
- ``sbom``: SPDX and CycloneDX JSON, packages streamed in bounded memory;
- ``certs``, ``rekor``, ``packages``: certificates and Fulcio extensions, log entries, purls;
- ``failures``: one line for whatever a decoder raised, recorded as the document's error."""

from typing import TYPE_CHECKING

from catalog.lazy import lazy_exports

if TYPE_CHECKING:
    from catalog.formats.bundle import decode_bundle
    from catalog.formats.classify import Classification, classify, classify_manifest
    from catalog.formats.cosign import decode_cosign_attestation, decode_cosign_signature
    from catalog.formats.dsse import decode_envelope, pae
    from catalog.formats.intoto import decode_statement
    from catalog.formats.notation import decode_notation_signature
    from catalog.formats.records import (
        DsseEnvelope,
        DsseSignature,
        Material,
        NotationDetails,
        PackageRecord,
        ProvenanceRecord,
        SbomRecord,
        SignatureRecord,
        StatementRecord,
        Subject,
        TlogEntry,
    )
    from catalog.formats.sbom import decode_sbom, decode_sbom_statement
    from catalog.formats.slsa import decode_provenance

__all__ = [
    "Classification",
    "DsseEnvelope",
    "DsseSignature",
    "Material",
    "NotationDetails",
    "PackageRecord",
    "ProvenanceRecord",
    "SbomRecord",
    "SignatureRecord",
    "StatementRecord",
    "Subject",
    "TlogEntry",
    "classify",
    "classify_manifest",
    "decode_bundle",
    "decode_cosign_attestation",
    "decode_cosign_signature",
    "decode_envelope",
    "decode_notation_signature",
    "decode_provenance",
    "decode_sbom",
    "decode_sbom_statement",
    "decode_statement",
    "pae",
]
__getattr__ = lazy_exports(
    __name__,
    {
        "DsseEnvelope": "records",
        "DsseSignature": "records",
        "Material": "records",
        "NotationDetails": "records",
        "PackageRecord": "records",
        "ProvenanceRecord": "records",
        "SbomRecord": "records",
        "SignatureRecord": "records",
        "StatementRecord": "records",
        "Subject": "records",
        "TlogEntry": "records",
        "Classification": "classify",
        "classify": "classify",
        "classify_manifest": "classify",
        "decode_cosign_attestation": "cosign",
        "decode_cosign_signature": "cosign",
        "decode_bundle": "bundle",
        "decode_notation_signature": "notation",
        "decode_envelope": "dsse",
        "pae": "dsse",
        "decode_statement": "intoto",
        "decode_provenance": "slsa",
        "decode_sbom": "sbom",
        "decode_sbom_statement": "sbom",
    },
)
