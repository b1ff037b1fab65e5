"""SLSA provenance predicates (v0.2 and v1) → ``ProvenanceRecord``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from catalog.formats import _json as j
from catalog.formats.records import Material, ProvenanceRecord, StatementRecord

PROVENANCE_V02 = "https://slsa.dev/provenance/v0.2"
PROVENANCE_V1 = "https://slsa.dev/provenance/v1"
_MAX_MATERIALS = 10_000
# Commit digests first: ``source_digest`` answers "which commit was built".
_COMMIT_ALGORITHMS = ("gitCommit", "sha1", "sha256")


def is_provenance(predicate_type: str) -> bool:
    return predicate_type in (PROVENANCE_V02, PROVENANCE_V1)


def decode_provenance(statement: StatementRecord) -> ProvenanceRecord:
    if statement.predicate is None:
        j.fail("$.predicate", "provenance predicate too large to decode")
    if statement.predicate_type == PROVENANCE_V02:
        return _v02(statement.predicate)
    if statement.predicate_type == PROVENANCE_V1:
        return _v1(statement.predicate)
    j.fail("$.predicateType", f"not SLSA provenance: {statement.predicate_type!r}")


def _v02(predicate: dict[str, Any]) -> ProvenanceRecord:
    path = "$.predicate"
    builder = j.opt_object(predicate, "builder", path) or {}
    invocation = j.opt_object(predicate, "invocation", path) or {}
    config = j.opt_object(invocation, "configSource", f"{path}.invocation") or {}
    config_path = f"{path}.invocation.configSource"
    metadata = j.opt_object(predicate, "metadata", path) or {}
    source_uri, source_ref = _split_source(j.opt_str(config, "uri", config_path))
    return ProvenanceRecord(
        predicate_type=PROVENANCE_V02,
        builder_id=j.opt_str(builder, "id", f"{path}.builder") or None,
        build_type=j.opt_str(predicate, "buildType", path),
        source_uri=source_uri,
        source_digest=_commit(config.get("digest"), f"{config_path}.digest"),
        source_ref=source_ref,
        entry_point=j.opt_str(config, "entryPoint", config_path),
        invocation_id=j.opt_str(metadata, "buildInvocationID", f"{path}.metadata"),
        materials=_materials(j.opt_list(predicate, "materials", path), f"{path}.materials"),
    )


def _v1(predicate: dict[str, Any]) -> ProvenanceRecord:
    path = "$.predicate"
    definition = j.opt_object(predicate, "buildDefinition", path) or {}
    definition_path = f"{path}.buildDefinition"
    run = j.opt_object(predicate, "runDetails", path) or {}
    builder = j.opt_object(run, "builder", f"{path}.runDetails") or {}
    metadata = j.opt_object(run, "metadata", f"{path}.runDetails") or {}
    params = j.opt_object(definition, "externalParameters", definition_path) or {}
    materials = _materials(
        j.opt_list(definition, "resolvedDependencies", definition_path),
        f"{definition_path}.resolvedDependencies",
    )
    source = _v1_source(params, f"{definition_path}.externalParameters")
    digest = source.digest or _dependency_commit(materials, source.uri, source.ref)
    return ProvenanceRecord(
        predicate_type=PROVENANCE_V1,
        builder_id=j.opt_str(builder, "id", f"{path}.runDetails.builder") or None,
        build_type=j.opt_str(definition, "buildType", definition_path),
        source_uri=source.uri,
        source_digest=digest,
        source_ref=source.ref,
        entry_point=source.entry_point,
        invocation_id=j.opt_str(metadata, "invocationId", f"{path}.runDetails.metadata"),
        materials=materials,
    )


@dataclass(frozen=True, slots=True)
class _Source:
    uri: str | None = None
    ref: str | None = None
    digest: str | None = None
    entry_point: str | None = None


def _v1_source(params: dict[str, Any], path: str) -> _Source:
    # Build types name their source differently: GitHub Actions "workflow", Cloud Build
    # "buildConfigSource" ({repository, ref, path}); generic builders a "source" URI or descriptor.
    for key in ("workflow", "buildConfigSource"):
        config = j.opt_object(params, key, path)
        if config is not None:
            where = f"{path}.{key}"
            uri, uri_ref = _split_source(j.opt_str(config, "repository", where))
            return _Source(
                uri=uri,
                ref=j.opt_str(config, "ref", where) or uri_ref,
                digest=_commit(config.get("digest"), f"{where}.digest"),
                entry_point=j.opt_str(config, "path", where),
            )
    source = params.get("source")
    if isinstance(source, str):
        uri, ref = _split_source(j.as_text(source, f"{path}.source"))
        return _Source(uri=uri, ref=ref)
    if isinstance(source, dict):
        uri, ref = _split_source(j.opt_str(source, "uri", f"{path}.source"))
        return _Source(uri=uri, ref=ref, digest=_commit(source.get("digest"), f"{path}.source"))
    return _Source()


def _split_source(uri: str | None) -> tuple[str | None, str | None]:
    """``git+https://host/repo@refs/tags/v1`` → (``https://host/repo``, ``refs/tags/v1``).

    The same repository then has the same URI in v0.2 (configSource) and v1 (workflow) records.
    """
    if uri is None:
        return None, None
    uri = uri.removeprefix("git+")
    base, at, ref = uri.rpartition("@")
    if at and ref.startswith("refs/") and "/" in base:
        return base, ref
    return uri, None


def _commit(value: Any, path: str) -> str | None:
    return None if value is None else _pick_commit(j.str_map(value, path))


def _pick_commit(digests: dict[str, str]) -> str | None:
    return next((digests[alg] for alg in _COMMIT_ALGORITHMS if alg in digests), None)


def _dependency_commit(
    materials: tuple[Material, ...], uri: str | None, ref: str | None
) -> str | None:
    """The commit of the resolved dependency that is the source (GitHub puts it there)."""
    if uri is None:
        return None
    for material in materials:
        material_uri, material_ref = _split_source(material.uri)
        if material_uri == uri and (ref is None or material_ref in (None, ref)):
            return _pick_commit(material.digests)
    return None


def _materials(items: list[Any], path: str) -> tuple[Material, ...]:
    if len(items) > _MAX_MATERIALS:
        j.fail(path, f"more than {_MAX_MATERIALS} materials")
    materials = []
    for i, item in enumerate(items):
        where = f"{path}[{i}]"
        material = j.as_object(item, where)
        digest = material.get("digest")
        materials.append(
            Material(
                uri=j.opt_str(material, "uri", where),
                digests={} if digest is None else j.str_map(digest, f"{where}.digest"),
            )
        )
    return tuple(materials)
