"""Read the documents of an attachment manifest: fetch its layers, run the right decoders.

Layers stream into spooled temporary files, so a large SBOM costs disk, not memory; its
packages are decoded while they are stored. An SBOM of at most ``SbomLimits.max_whole`` bytes
(alone, or in the envelope of an attestation that says it carries one) is decoded here instead,
package rows and all, on a worker thread or in a worker process (``_preparer``): the single
writer then only writes. Other documents are decoded whole, so they are held to a smaller
size. A layer that cannot be read or decoded, whatever the decoder raised (``FormatError``, or
a ``RecursionError``, ``MemoryError``, ``ValueError`` it did not foresee), becomes one line of
error with its reason; the other layers and the crawl go on. Whole documents are decoded on
worker threads, off the event loop.
"""

from __future__ import annotations

import asyncio
import tempfile
from concurrent.futures import Executor
from typing import BinaryIO

from catalog.errors import FormatError
from catalog.formats import intoto, slsa
from catalog.formats.bundle import decode_bundle
from catalog.formats.classify import LayerClass, classify_manifest
from catalog.formats.cosign import decode_cosign_attestation, decode_cosign_signature
from catalog.formats.failures import decoder_failure
from catalog.formats.notation import decode_notation_signature
from catalog.formats.records import SignatureRecord, StatementRecord
from catalog.formats.sbom import SbomLimits
from catalog.index._preparer import SbomPreparer
from catalog.oci.boundedjson import first_line
from catalog.oci.errors import OCIError
from catalog.oci.manifest import Descriptor, Manifest
from catalog.oci.repository import Repository
from catalog.store.documents import AttestationDoc, DecodedDocuments, SbomDoc, SignatureDoc

LAYER_LIMIT = 512 * 1024 * 1024  # larger documents are refused, not read
# Documents decoded whole (signatures, envelopes, bundles, statements): held in memory a few
# times over while they are decoded, so they get a smaller limit than streamed SBOMs.
WHOLE_DOCUMENT_LIMIT = 64 * 1024 * 1024
_IN_MEMORY = 1024 * 1024  # spooled files move to disk past this: a crawl holds many at once
_PREPARE_UP_TO = SbomLimits().max_whole  # SBOMs decoded here (parsed whole), not on the writer
# The package rows of a prepared SBOM may take this many times its size (a few hundred bytes
# of JSON a package, about a kilobyte a row); past that the writer streams it instead.
_ROWS_PER_BYTE = 8


def _streamed(layer_class: LayerClass) -> bool:
    """SBOMs stream from a spooled file; every other document is decoded whole."""
    return layer_class.decoder == "sbom-json" or (
        layer_class.decoder == "in-toto-statement" and layer_class.kind == "sbom"
    )


def _enveloped_sbom(layer: Descriptor, layer_class: LayerClass) -> bool:
    """A document decoded whole that says it carries an SBOM small enough to prepare ahead
    (a cosign attestation or a Sigstore bundle with an SBOM predicate)."""
    return (
        not _streamed(layer_class) and layer_class.kind == "sbom" and layer.size <= _PREPARE_UP_TO
    )


def _held(layer: Descriptor, layer_class: LayerClass) -> int:
    if _enveloped_sbom(layer, layer_class):
        return layer.size + _ROWS_PER_BYTE * layer.size  # the document and its SBOM's rows
    if not _streamed(layer_class):
        return min(layer.size, WHOLE_DOCUMENT_LIMIT)
    if layer.size <= _PREPARE_UP_TO:
        return _ROWS_PER_BYTE * layer.size  # its package rows, or the spool when they are more
    return _IN_MEMORY


def held_bytes(manifest: Manifest) -> int:
    """What decoding the attachment keeps in memory until it is recorded, at most: its whole
    documents, the package rows of small SBOMs, the in-memory part of large ones' spools."""
    classes = classify_manifest(manifest).layers
    return sum(
        _held(layer, layer_class)
        for layer, layer_class in zip(manifest.layers, classes, strict=True)
        if layer_class.decoder is not None
    )


async def _fetch(repo: Repository, layer: Descriptor, limit: int) -> BinaryIO:
    if layer.size > limit:
        raise FormatError(f"{layer.size} bytes is over the {limit}-byte document limit")
    spool = tempfile.SpooledTemporaryFile(max_size=_IN_MEMORY)  # noqa: SIM115 (caller closes)
    held = 0
    try:
        async for chunk in repo.blob_chunks(layer.digest, layer.size):
            held += len(chunk)
            if held > _IN_MEMORY:
                # To disk (the first time, with all it held): file I/O of up to a 4 MiB chunk
                # goes to a worker thread, not the event loop.
                await asyncio.to_thread(spool.write, chunk)
            else:
                spool.write(chunk)
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return spool  # type: ignore[return-value]


def _statement_docs(
    docs: DecodedDocuments, layer: Descriptor, statement: StatementRecord, payload: bytes | None
) -> None:
    """An in-toto statement: an SBOM (packages streamed), provenance, or another attestation."""
    if intoto.is_sbom_predicate(statement.predicate_type) and payload is not None:
        docs.sboms.append(SbomDoc(str(layer.digest), payload, wrapped=True))
        return
    provenance = (
        slsa.decode_provenance(statement) if slsa.is_provenance(statement.predicate_type) else None
    )
    docs.attestations.append(AttestationDoc(str(layer.digest), statement, provenance))


def _signature_doc(
    docs: DecodedDocuments, layer: Descriptor, data: bytes, record: SignatureRecord
) -> None:
    docs.signatures.append(
        SignatureDoc(str(layer.digest), layer.media_type, data, dict(layer.annotations), record)
    )
    if record.statement is not None:
        _statement_docs(docs, layer, record.statement, record.payload)


def _decode_whole(
    docs: DecodedDocuments, manifest: Manifest, layer: Descriptor, decoder: str, source: BinaryIO
) -> None:
    """Decode one whole document into ``docs``; whatever fails is that document's error."""
    try:
        data = source.read()
        if decoder == "cosign-signature":
            _signature_doc(docs, layer, data, decode_cosign_signature(data, layer.annotations))
        elif decoder == "cosign-attestation":
            record = decode_cosign_attestation(data, layer.annotations)
            _signature_doc(docs, layer, data, record)
        elif decoder == "sigstore-bundle":
            _signature_doc(docs, layer, data, decode_bundle(data))
        elif decoder == "notation":
            record = decode_notation_signature(layer.media_type, data, manifest.annotations)
            _signature_doc(docs, layer, data, record)
        elif decoder == "in-toto-statement":
            _statement_docs(docs, layer, intoto.decode_statement(data), data)
    except Exception as exc:  # one document's failure, whatever it is, is that document's
        docs.errors.append(f"layer {layer.digest} ({layer.media_type}): {decoder_failure(exc)}")
    finally:
        source.close()


async def decode_attachment(
    repo: Repository,
    manifest: Manifest,
    threads: Executor | None = None,
    preparer: SbomPreparer | None = None,
) -> DecodedDocuments:
    """Fetch and decode the attachment's documents; decoding runs on ``threads`` (the shared
    default pool when ``None``), small SBOMs through ``preparer`` when given (maybe in worker
    processes), never on the event loop."""
    docs = DecodedDocuments()
    loop = asyncio.get_running_loop()
    classes = classify_manifest(manifest).layers
    for layer, layer_class in zip(manifest.layers, classes, strict=True):
        decoder = layer_class.decoder
        if decoder is None:
            continue
        streamed = _streamed(layer_class)
        try:
            source = await _fetch(repo, layer, LAYER_LIMIT if streamed else WHOLE_DOCUMENT_LIMIT)
        except (OCIError, FormatError) as exc:
            docs.errors.append(f"layer {layer.digest}: {first_line(exc, 1000)}")
            docs.unfetched |= isinstance(exc, OCIError)  # the registry's failure, maybe passing
            continue
        budget = _ROWS_PER_BYTE * layer.size
        if streamed:
            doc = SbomDoc(str(layer.digest), source, wrapped=decoder != "sbom-json")
            docs.sboms.append(doc)
            if layer.size <= _PREPARE_UP_TO:
                await _prepare(doc, budget, threads, preparer)
            continue  # else the store streams the packages from ``source`` (its writer thread)
        # Decoding (up to WHOLE_DOCUMENT_LIMIT bytes of JSON, certificates) runs on a worker
        # thread: on the event loop it would stall every call the server is answering.
        held = len(docs.sboms)
        await loop.run_in_executor(threads, _decode_whole, docs, manifest, layer, decoder, source)
        if _enveloped_sbom(layer, layer_class):
            for doc in docs.sboms[held:]:  # the SBOM its statement carried, as a payload
                await _prepare(doc, budget, threads, preparer)
    return docs


async def _prepare(
    doc: SbomDoc, budget: int, threads: Executor | None, preparer: SbomPreparer | None
) -> None:
    """Decode a small SBOM into its rows ahead of the writer, then let its source go."""
    if preparer is None:
        await asyncio.get_running_loop().run_in_executor(threads, doc.prepare, budget)
    else:
        await preparer.prepare(doc, budget)
    if doc.prepared is not None:
        if not isinstance(doc.source, bytes):
            doc.source.close()
        doc.source = b""  # its rows are what is held now
