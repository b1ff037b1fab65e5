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
- ``certs``, ``rekor``, ``packages``: certificates and Fulcio extensions, log entries, purls.
"""
