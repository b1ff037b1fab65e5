"""SLSA provenance v0.2 (slsa-github-generator and BuildKit) and v1 (GitHub Actions)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from catalog.errors import FormatError
from catalog.formats import bundle, cosign, intoto, slsa
from catalog.formats.records import Material, ProvenanceRecord, StatementRecord
from tests.formats.fixtures import CONFORMANCE, slsa_layout

EXAMPLE_PACKAGE = "https://github.com/slsa-framework/example-package"
COMMITS = {
    "v1.10.0": "d37a7f740ee7404914456f24dcd90e865a0509e8",
    "v2.0.0": "693130cb6cb840a7bc9cb18c6510d536a95dc7e6",
}
RUNS = {"v1.10.0": "8373487125-1", "v2.0.0": "8791219607-1"}


def attestation_statement(version: str) -> StatementRecord:
    layout = slsa_layout(version)
    (layer,) = layout.json_blob(layout.attestation_manifest_digest())["layers"]
    record = cosign.decode_cosign_attestation(layout.blob(layer["digest"]), layer["annotations"])
    assert record.statement is not None
    return record.statement


@pytest.mark.parametrize("version", ["v1.10.0", "v2.0.0"])
def test_slsa_github_generator_container_provenance(version: str) -> None:
    statement = attestation_statement(version)
    # The builder id read straight from the fixture, to compare with what the decoder says.
    assert statement.predicate is not None
    fixture_builder = statement.predicate["builder"]["id"]
    assert fixture_builder == (
        "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/"
        f"generator_container_slsa3.yml@refs/tags/{version}"
    )

    record = slsa.decode_provenance(statement)

    assert record == ProvenanceRecord(
        predicate_type="https://slsa.dev/provenance/v0.2",
        builder_id=fixture_builder,
        build_type="https://github.com/slsa-framework/slsa-github-generator/container@v1",
        source_uri=EXAMPLE_PACKAGE,
        source_digest=COMMITS[version],
        source_ref="refs/tags/v13.0.30",
        entry_point=".github/workflows/verifier-e2e.all.workflow_dispatch.main.all.slsa3.yml",
        invocation_id=RUNS[version],
        materials=(
            Material(
                uri=f"git+{EXAMPLE_PACKAGE}@refs/tags/v13.0.30", digests={"sha1": COMMITS[version]}
            ),
        ),
    )


def test_buildkit_provenance_inside_the_image_index() -> None:
    layout = slsa_layout("v1.10.0")
    image_index = layout.json_blob(layout.index()["manifests"][0]["digest"])
    (attestation,) = (
        m
        for m in image_index["manifests"]
        if m.get("annotations", {}).get("vnd.docker.reference.type") == "attestation-manifest"
    )
    (layer,) = layout.json_blob(attestation["digest"])["layers"]
    assert layer["mediaType"] == "application/vnd.in-toto+json"

    statement = intoto.decode_statement(layout.blob(layer["digest"]))
    assert statement.predicate_type == layer["annotations"]["in-toto.io/predicate-type"]
    assert intoto.signed_digests(statement.subjects) == (
        attestation["annotations"]["vnd.docker.reference.digest"],
    )
    assert len(statement.subjects) == 2  # two tags, one digest
    record = slsa.decode_provenance(statement)

    assert record.builder_id is None  # BuildKit writes an empty builder id
    assert record.build_type == "https://mobyproject.org/buildkit@v1"
    assert record.source_uri == f"{EXAMPLE_PACKAGE}.git#{COMMITS['v1.10.0']}"
    assert record.source_digest == COMMITS["v1.10.0"]
    assert record.source_ref is None
    assert record.entry_point == "Dockerfile"
    assert record.invocation_id == "ommxtc3qv65c8aogpjlg4dcxl"
    assert [m.uri for m in record.materials][:1] == [
        "pkg:docker/golang@1.21?digest=sha256:c82d4ad02c062cf2b393bf0374df26638c6fed3dfe52cdbd3635d4a7befab86e&platform=linux%2Famd64"
    ]
    assert len(record.materials) == 3


def conformance_statement(case: str) -> StatementRecord:
    record = bundle.decode_bundle((CONFORMANCE / case / "bundle.sigstore.json").read_bytes())
    assert record.statement is not None
    return record.statement


def test_v1_github_actions_workflow() -> None:
    record = slsa.decode_provenance(conformance_statement("happy-path-intoto-in-dsse-v3"))
    assert record == ProvenanceRecord(
        predicate_type="https://slsa.dev/provenance/v1",
        builder_id="https://github.com/loosebazooka/aa-test/.github/workflows/provenance.yaml@refs/heads/main",
        build_type="https://actions.github.io/buildtypes/workflow/v1",
        source_uri="https://github.com/loosebazooka/aa-test",
        source_digest="ebff8dfbd609b7b22237c7719ce07f2dc7934f5f",
        source_ref="refs/heads/main",
        entry_point=".github/workflows/provenance.yaml",
        invocation_id="https://github.com/loosebazooka/aa-test/actions/runs/11941425487/attempts/1",
        materials=(
            Material(
                uri="git+https://github.com/loosebazooka/aa-test@refs/heads/main",
                digests={"gitCommit": "ebff8dfbd609b7b22237c7719ce07f2dc7934f5f"},
            ),
        ),
    )


def test_v1_slsa_github_generator_build_type() -> None:
    record = slsa.decode_provenance(conformance_statement("intoto-with-custom-trust-root"))
    assert record.builder_id == "https://github.com/actions/runner/github-hosted"
    assert record.source_uri == "https://github.com/sigstore/sigstore-conformance"
    assert record.source_digest == "c5f5fb255163ed85ddb32d54dcdd710ac3f04603"
    assert record.entry_point == ".github/workflows/conformance.yml"


def test_v1_minimal_predicate() -> None:
    record = slsa.decode_provenance(conformance_statement("rekor2-dsse-happy-path"))
    assert (
        record.builder_id
        == "https://github.com/sigstore-conformance/rekor2-dsse-hashedrekord-regen"
    )
    assert (record.source_uri, record.source_digest, record.materials) == (None, None, ())


def v1(external: dict[str, Any], dependencies: list[Any] | None = None) -> StatementRecord:
    predicate = {
        "buildDefinition": {
            "buildType": "https://example.com/build/v1",
            "externalParameters": external,
            "resolvedDependencies": dependencies or [],
        },
        "runDetails": {"builder": {"id": "https://example.com/builder"}},
    }
    return StatementRecord(
        statement_type="https://in-toto.io/Statement/v1",
        predicate_type=slsa.PROVENANCE_V1,
        subjects=(),
        predicate=predicate,
        size=len(json.dumps(predicate)),
    )


def test_v1_generic_source_descriptor_and_uri() -> None:
    record = slsa.decode_provenance(
        v1(
            {
                "source": {
                    "uri": "git+https://git.example/r@refs/heads/dev",
                    "digest": {"sha1": "ab" * 20},
                }
            }
        )
    )
    assert (record.source_uri, record.source_ref, record.source_digest) == (
        "https://git.example/r",
        "refs/heads/dev",
        "ab" * 20,
    )
    record = slsa.decode_provenance(
        v1(
            {"source": "git+https://git.example/r@refs/tags/v1"},
            [{"uri": "git+https://git.example/r@refs/tags/v1", "digest": {"gitCommit": "cd" * 20}}],
        )
    )
    assert (record.source_ref, record.source_digest) == ("refs/tags/v1", "cd" * 20)


@pytest.mark.parametrize(
    ("statement", "message"),
    [
        (v1({"workflow": "main.yml"}), r"externalParameters.workflow: expected an object"),
        (v1({"workflow": {"repository": 7}}), r"workflow.repository: expected a string"),
        (
            v1({}, [{"uri": "x", "digest": {"sha256": 1}}]),
            r"resolvedDependencies\[0\].digest.sha256",
        ),
        (v1({}, ["x"]), r"resolvedDependencies\[0\]: expected an object"),
        (v1({}, [{}] * 10_001), "more than 10000 materials"),
        (
            StatementRecord(
                "https://in-toto.io/Statement/v1", "https://example.com/other", (), {}, 2
            ),
            "not SLSA provenance",
        ),
        (
            StatementRecord(
                "https://in-toto.io/Statement/v1", slsa.PROVENANCE_V1, (), None, 9 << 20
            ),
            "too large",
        ),
        (
            StatementRecord(
                "https://in-toto.io/Statement/v0.1", slsa.PROVENANCE_V02, (), {"builder": []}, 15
            ),
            r"\$.predicate.builder: expected an object",
        ),
    ],
)
def test_hostile_provenance(statement: StatementRecord, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        slsa.decode_provenance(statement)


def test_is_provenance() -> None:
    assert slsa.is_provenance("https://slsa.dev/provenance/v0.2")
    assert not slsa.is_provenance("https://slsa.dev/provenance/v0.1")
