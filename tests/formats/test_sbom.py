"""SBOMs: syft and trivy fixtures, statement-wrapped SBOMs, streams, and hostile documents.

Every test runs twice: small documents parsed whole (the default), and streamed (``max_whole``
0), so both readers give the same records and refuse the same documents with the same words.
"""

from __future__ import annotations

import functools
import io
import json
import random
from typing import Any

import pytest

from catalog.errors import FormatError
from catalog.formats import _cyclonedx, _stream, dsse, sbom
from catalog.formats.records import PackageRecord, Subject
from tests.formats.fixtures import SBOMS


@pytest.fixture(autouse=True, params=["whole", "streamed"])
def reader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "streamed":
        monkeypatch.setattr(sbom, "SbomLimits", functools.partial(sbom.SbomLimits, max_whole=0))
    return str(request.param)


SYFT_PACKAGES = [
    PackageRecord(
        purl=None,  # syft's snapshot writes "a-purl-1", which is no purl
        raw_purl="a-purl-1",
        type=None,
        namespace=None,
        name="package-1",
        version="1.0.1",
        licenses=("MIT",),
        supplier=None,
        kind="library",
    ),
    PackageRecord(
        purl="pkg:deb/debian/package-2@2.0.1",
        raw_purl="pkg:deb/debian/package-2@2.0.1",
        type="deb",
        namespace="debian",
        name="package-2",
        version="2.0.1",
        licenses=(),
        supplier=None,
        kind="library",
    ),
    PackageRecord(
        purl=None,
        raw_purl=None,
        type=None,
        namespace=None,
        name="debian",
        version="1.2.3",
        licenses=(),
        supplier=None,
        kind="operating-system",
    ),
]


@pytest.mark.parametrize("version", ["1.6", "1.7"])
def test_syft_cyclonedx(version: str) -> None:
    record = sbom.decode_sbom((SBOMS / f"syft-image.cdx-{version}.json").read_bytes())
    assert (record.format, record.spec_version) == ("cyclonedx", version)
    assert record.name == "user-image-input"
    assert record.tools == ("syft v0.42.0-bogus",)
    assert list(record.packages) == SYFT_PACKAGES
    assert record.predicate_type is None
    assert record.subjects == ()


def test_syft_spdx() -> None:
    record = sbom.decode_sbom((SBOMS / "syft-image.spdx-2.3.json").read_bytes())
    assert (record.format, record.spec_version) == ("spdx", "2.3")
    assert record.name == "user-image-input"
    assert record.tools == ("syft-v0.42.0-bogus",)  # "Organization: Anchore, Inc" is no tool
    packages = list(record.packages)
    assert len(packages) == 3
    assert packages[0] == PackageRecord(
        purl=None,
        raw_purl="a-purl-1",
        type=None,
        namespace=None,
        name="package-1",
        version="1.0.1",
        licenses=("MIT",),  # declared; the concluded NOASSERTION is no license
        supplier=None,
        kind=None,
    )
    assert packages[1].purl == "pkg:deb/debian/package-2@2.0.1"
    assert packages[1].licenses == ()
    image = packages[2]
    # Canonical form: the escaped ':' unescaped, the empty "arch=" qualifier dropped.
    digest = "sha256:2731251dc34951c0e50fcc643b4c5f74922dad1a5d98f302b504cf46cd5d9368"
    assert image.purl == f"pkg:oci/user-image-input@{digest}"
    assert image.raw_purl == f"pkg:oci/user-image-input@sha256%3A{digest[7:]}?arch="
    assert (image.type, image.version, image.kind) == ("oci", digest, "CONTAINER")


TRIVY_PURLS = [
    "pkg:rpm/centos/bash@4.2.46-31.el7?arch=x86_64&distro=centos-7.6.1810",
    # Qualifiers sorted: the document has arch, epoch, distro.
    "pkg:rpm/centos/openssl-libs@1.0.2k-16.el7?arch=x86_64&distro=centos-7.6.1810&epoch=1",
    None,
]


def test_trivy_cyclonedx() -> None:
    record = sbom.decode_sbom((SBOMS / "trivy-centos-7.cdx-1.5.json").read_bytes())
    assert (record.format, record.spec_version) == ("cyclonedx", "1.5")
    assert record.name == "integration/testdata/fixtures/images/centos-7.tar.gz"
    assert record.tools == ("trivy dev",)
    packages = list(record.packages)
    assert [p.purl for p in packages] == TRIVY_PURLS
    assert [p.licenses for p in packages] == [("GPLv3+",), ("OpenSSL+",), ()]
    assert [(p.name, p.version) for p in packages] == [
        ("bash", "4.2.46-31.el7"),
        ("openssl-libs", "1.0.2k-16.el7"),
        ("centos", "7.6.1810"),
    ]


def test_trivy_in_toto_attestation() -> None:
    (envelope,) = dsse.decode_envelopes_jsonl(
        (SBOMS / "trivy-centos-7.cdx.intoto.jsonl").read_bytes()
    )
    record = sbom.decode_sbom_statement(envelope.payload)
    # The wrapped document says 1.4 where the bare one says 1.5: trivy wrote them apart.
    assert (record.format, record.spec_version) == ("cyclonedx", "1.4")
    assert record.predicate_type == "https://cyclonedx.org/bom"
    assert record.subjects == (
        Subject(
            name="index.docker.io/library/centos",
            digests={"sha256": "be65f488b7764ad3638f236b7b515b3678369a5124c47b8d32916d6487418ea4"},
        ),
    )
    assert [p.purl for p in record.packages] == TRIVY_PURLS


def test_packages_stream_from_a_seekable_file_and_iterate_again() -> None:
    data = (SBOMS / "trivy-centos-7.cdx-1.5.json").read_bytes()
    stream = io.BytesIO(b"junk before" + data)
    stream.seek(len(b"junk before"))
    record = sbom.decode_sbom(stream)
    assert [p.name for p in record.packages] == ["bash", "openssl-libs", "centos"]
    assert [p.name for p in record.packages] == ["bash", "openssl-libs", "centos"]


class _NoSeek(io.BytesIO):
    def seekable(self) -> bool:
        return False


def test_unseekable_stream_is_a_caller_error() -> None:
    with pytest.raises(ValueError, match="seekable"):
        sbom.decode_sbom(_NoSeek(b"{}"))


def cdx(components: Any, **extra: Any) -> dict[str, Any]:
    return {"bomFormat": "CycloneDX", "specVersion": "1.6", "components": components, **extra}


def spdx(packages: Any, **extra: Any) -> dict[str, Any]:
    return {"spdxVersion": "SPDX-2.2", "name": "doc", "packages": packages, **extra}


def packages_of(doc: Any) -> list[PackageRecord]:
    return list(sbom.decode_sbom(json.dumps(doc).encode()).packages)


def test_key_order_does_not_matter() -> None:
    doc = {
        "components": [{"name": "a", "purl": "pkg:npm/%40scope/a@1.0.0"}],
        "metadata": {"tools": {"components": [{"name": "cdxgen", "version": "10"}]}},
        "specVersion": "1.6",
        "bomFormat": "CycloneDX",
    }
    record = sbom.decode_sbom(json.dumps(doc).encode())
    assert record.tools == ("cdxgen 10",)
    (package,) = record.packages
    assert (package.type, package.namespace, package.name, package.version) == (
        "npm",
        "@scope",
        "a",
        "1.0.0",
    )


def test_nested_components_are_all_yielded_children_first() -> None:
    doc = cdx(
        [
            {
                "name": "app",
                "components": [{"name": "lib", "components": [{"name": "shaded"}]}],
                "group": "org.example",
                "supplier": {"name": "Example Inc"},
                "licenses": [{"expression": "MIT OR Apache-2.0"}, {"license": {"name": "Custom"}}],
            },
            {"name": "tool", "licenses": None, "components": None},
        ]
    )
    packages = packages_of(doc)
    assert [p.name for p in packages] == ["shaded", "lib", "app", "tool"]
    app = packages[2]
    assert (app.namespace, app.supplier) == ("org.example", "Example Inc")
    assert app.licenses == ("MIT OR Apache-2.0", "Custom")


def test_spdx_purl_reference_and_supplier() -> None:
    doc = spdx(
        [
            {
                "name": "log4j-core",
                "versionInfo": "2.14.1",
                "supplier": "Organization: Apache",
                "licenseConcluded": "Apache-2.0",
                "licenseDeclared": "Apache-2.0",
                "externalRefs": [
                    {"referenceType": "cpe23Type", "referenceLocator": "cpe:2.3:a:apache:log4j"},
                    {
                        "referenceCategory": "PACKAGE_MANAGER",
                        "referenceType": "purl",
                        "referenceLocator": "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1",
                    },
                ],
                "files": [{"fileName": "x" * 100}] * 10,
            }
        ],
        creationInfo={"creators": ["Tool: trivy-0.50", "Person: me"]},
    )
    record = sbom.decode_sbom(json.dumps(doc).encode())
    assert record.spec_version == "2.2"
    assert record.tools == ("trivy-0.50",)
    (package,) = record.packages
    assert package.purl == "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1"
    assert (package.namespace, package.supplier, package.licenses) == (
        "org.apache.logging.log4j",
        "Organization: Apache",
        ("Apache-2.0",),
    )


def test_document_without_packages() -> None:
    record = sbom.decode_sbom(json.dumps({"spdxVersion": "SPDX-2.3", "files": []}).encode())
    assert list(record.packages) == []
    assert record.name is None


def deep_components(levels: int) -> list[Any]:
    components: list[Any] = []
    for level in range(levels):
        components = [{"name": f"c{level}", "components": components}]
    return components


def test_component_nesting_limit() -> None:
    assert len(packages_of(cdx(deep_components(64)))) == 64
    with pytest.raises(FormatError, match="components nested deeper than 64"):
        packages_of(cdx(deep_components(65)))


LONG = "x" * (64 * 1024 + 1)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({}, "neither spdxVersion nor bomFormat"),
        ({"spdxVersion": "SPDX-2.3", "bomFormat": "CycloneDX"}, "both spdxVersion and bomFormat"),
        ({"spdxVersion": "2.3"}, "not an SPDX version"),
        ({"bomFormat": "SWID", "specVersion": "1"}, "not CycloneDX"),
        ({"bomFormat": "CycloneDX"}, "without specVersion"),
        ({"spdxVersion": 2.3}, r"SBOM \$.spdxVersion: expected a string, got a number"),
        (spdx({}), r"\$.packages: expected an array, got an object"),
        (cdx("none"), r"\$.components: expected an array, got a string"),
        (cdx([], metadata=[]), r"\$.metadata: expected an object"),
        (cdx([], metadata={"tools": "syft"}), r"\$.metadata.tools: expected an object"),
        (cdx([], metadata={"tools": [{"name": 1}]}), r"tools\[0\].name: expected a string"),
        (cdx([], metadata={"tools": [{"name": "t"}] * 257}), "more than 256 tools"),
        (cdx([], metadata={"component": {"name": LONG}}), "over the limit of 65536"),
        (spdx([], creationInfo={"creators": "Tool: x"}), r"creators: expected an array"),
        (spdx([], name=LONG), r"\$.name: string of 65537 characters is over the limit"),
        ({"spdxVersion": "SPDX-2.3", "x": [[[[]]]] * 3, "y": "\ud800"}, None),
        ("not an object", r"SBOM \$: expected an object, got a string"),
    ],
)
def test_hostile_documents(doc: Any, message: str | None) -> None:
    data = json.dumps(doc).encode()
    if message is None:  # unpaired surrogates in ignored strings are harmless
        sbom.decode_sbom(data)
        return
    with pytest.raises(FormatError, match=message):
        sbom.decode_sbom(data)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (cdx([1]), r"\$.components\[0\]: expected an object, got a number"),
        (cdx([{"name": ["a"]}]), r"\$.components\[0\].name: expected a string, got an array"),
        (cdx([{}, {"version": LONG}]), r"\$.components\[1\].version: string of 65537 characters"),
        (cdx([{"purl": "pkg:npm/a\u0000@1"}]), r"components\[0\].purl: string contains NUL"),
        (cdx([{"licenses": {}}]), r"\$.components\[0\].licenses: expected an array"),
        (cdx([{"licenses": [{"license": "MIT"}]}]), r"licenses\[0\].license: expected an object"),
        (cdx([{"licenses": [{"expression": "MIT"}] * 257}]), "more than 256 licenses"),
        (cdx([{"supplier": "Acme"}]), r"components\[0\].supplier: expected an object"),
        (cdx([{"components": {}}]), r"components\[0\].components: expected an array"),
        (spdx([{"externalRefs": [{"referenceType": "purl"}]}]), r"missing 'referenceLocator'"),
        (spdx([{"externalRefs": {}}]), r"\$.packages\[0\].externalRefs: expected an array"),
        (spdx([{"versionInfo": 1.0}]), r"\$.packages\[0\].versionInfo: expected a string"),
    ],
)
def test_hostile_packages_fail_while_streaming(doc: Any, message: str) -> None:
    record = sbom.decode_sbom(json.dumps(doc).encode())  # the header is fine
    with pytest.raises(FormatError, match=message):
        list(record.packages)


@pytest.mark.parametrize(
    "doc",
    [
        cdx([{"name": "a", "licenses": [{}] * (_stream.VALUE_ITEMS + 1)}]),
        cdx([{"name": "a", "supplier": {"name": "x", "url": ["u"] * _stream.VALUE_ITEMS}}]),
        spdx([{"externalRefs": [{"referenceType": "purl", "x": [0] * _stream.VALUE_ITEMS}]}]),
    ],
)
def test_a_value_read_whole_from_a_stream_is_bounded(doc: Any, reader: str) -> None:
    """What a decoder reads whole (a component's licenses or supplier, an external reference)
    is built in memory before its own limits are checked: a stream bounds it first (30 MB of
    ``{}`` as licenses held 724 MB). Parsed whole, a document is small already."""
    data = json.dumps(doc).encode()
    if reader == "whole" and len(data) <= sbom.SbomLimits().max_whole:
        pytest.skip("parsed whole: the document's own size bounds it")
    record = sbom.decode_sbom(data)
    with pytest.raises(FormatError, match="not read whole"):
        list(record.packages)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "not valid JSON|unexpected end"),
        (b'{"spdxVersion": "SPDX-2.3"', "unexpected end|not valid JSON"),
        (b'{"spdxVersion": "SPDX-2.3"} {}', "not valid JSON|after the end"),
        (b'{"bomFormat": "CycloneDX", "x": NaN}', "not valid JSON"),
        (b'{"spdxVersion": "SPDX-2.3", "x": ' + b"1" * 5000 + b"}", "not valid JSON"),
        (b'{"spdxVersion": "\xff"}', "not valid JSON"),
        (b'{"spdxVersion": "SPDX-2.3", "x": ' + b"[" * 1_000_000, "nested deeper than 256"),
        (b'{"spdxVersion": "SPDX-2.3", "x": ' + b'{"a":' * 300, "nested deeper than 256"),
    ],
)
def test_malformed_json(data: bytes, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        sbom.decode_sbom(data)


NO_PREDICATE = b'{"_type": "https://in-toto.io/Statement/v1", "predicateType": "p", "subject": []}'


def statement(predicate: Any, **extra: Any) -> bytes:
    doc = {
        "_type": "https://in-toto.io/Statement/v0.1",
        "predicateType": "https://spdx.dev/Document",
        "subject": [{"name": "img", "digest": {"sha256": "ab" * 32}}],
        "predicate": predicate,
        **extra,
    }
    return json.dumps(doc).encode()


def test_statement_wrapped_spdx() -> None:
    record = sbom.decode_sbom_statement(statement(spdx([{"name": "zlib", "versionInfo": "1.3"}])))
    assert record.predicate_type == "https://spdx.dev/Document"
    assert [(p.name, p.version) for p in record.packages] == [("zlib", "1.3")]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (NO_PREDICATE, "the statement has no predicate"),
        (statement([]), r"\$.predicate: expected an object"),
        (statement({"name": "x"}), r"\$.predicate: neither spdxVersion nor bomFormat"),
        (statement(spdx([]), _type="x"), "not an in-toto Statement type"),
        (statement(spdx([]), subject=[{"name": "a"}]), r"subject\[0\]: missing 'digest'"),
    ],
)
def test_hostile_statements(data: bytes, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        sbom.decode_sbom_statement(data)


def test_limits_are_adjustable() -> None:
    limits = sbom.SbomLimits(max_component_nesting=2, max_text=10)
    data = json.dumps(cdx(deep_components(2))).encode()
    assert len(list(sbom.decode_sbom(data, limits=limits).packages)) == 2
    with pytest.raises(FormatError, match="components nested deeper than 2"):
        list(sbom.decode_sbom(json.dumps(cdx(deep_components(3))).encode(), limits=limits).packages)
    data = json.dumps(cdx([{"name": "a" * 11}])).encode()
    with pytest.raises(FormatError, match="over the limit of 10"):
        list(sbom.decode_sbom(data, limits=limits).packages)


class _CountingReads(io.BytesIO):
    reads = 0

    def read(self, size: int | None = -1) -> bytes:
        self.reads += 1
        return super().read(size)

    def readinto(self, buffer: Any) -> int:
        self.reads += 1
        return super().readinto(buffer)


def test_a_small_document_is_read_once_and_a_large_one_streamed(reader: str) -> None:
    data = (SBOMS / "trivy-centos-7.cdx-1.5.json").read_bytes()
    stream = _CountingReads(data)
    record = sbom.decode_sbom(stream)
    assert [p.name for p in record.packages] == ["bash", "openssl-libs", "centos"]
    assert [p.name for p in record.packages] == ["bash", "openssl-libs", "centos"]
    # Whole: one read for both passes; streamed: each pass reads till the end (at least twice).
    assert stream.reads == 1 if reader == "whole" else stream.reads >= 4


def test_an_unpaired_surrogate_in_a_recorded_string(reader: str) -> None:
    data = json.dumps(cdx([{"name": "a\ud800b"}])).encode()
    record = sbom.decode_sbom(data)
    if reader == "streamed":  # ijson's C backend makes it "?" (and refuses a lone low one)
        assert [p.name for p in record.packages] == ["a?b"]
        return
    with pytest.raises(FormatError, match=r"components\[0\].name: string contains an unpaired"):
        list(record.packages)


# SPDX packages of a plain parsed document are read by dictionary look-ups, and any package
# that is not what the generic reads take goes to them: both must give the same records.
ODD_SPDX_PACKAGES: list[Any] = [
    {"name": "a", "versionInfo": None, "supplier": "NOASSERTION", "licenseDeclared": "MIT"},
    {"name": "b", "licenseConcluded": "MIT", "licenseDeclared": "MIT", "externalRefs": None},
    {"name": "c", "licenseConcluded": "NONE", "licenseDeclared": "", "supplier": "Org: x"},
    {
        "name": "d",
        "externalRefs": [
            {"referenceType": "cpe23Type", "referenceLocator": "cpe:2.3:a:d"},
            {"referenceType": "purl", "referenceLocator": "pkg:npm/d@1"},
            {"referenceType": "purl", "referenceLocator": "pkg:npm/other@2"},
        ],
    },
    {"name": "e", "externalRefs": [], "primaryPackagePurpose": "LIBRARY", "extra": [[{}]]},
    {"versionInfo": "1", "externalRefs": [{"referenceType": "purl", "referenceLocator": "x"}]},
    {"name": "g", "externalRefs": [{"referenceType": "purl", "referenceLocator": "pkg:x/é"}]},
    {"name": "h", "licenseConcluded": "MIT", "licenseDeclared": "Apache-2.0"},
    {"name": "i", "licenseConcluded": "NOASSERTION", "licenseDeclared": "BSD-3-Clause"},
]


@pytest.mark.parametrize("ascii", [True, False])
def test_parsed_and_streamed_spdx_packages_are_the_same(ascii: bool) -> None:
    data = json.dumps(spdx(ODD_SPDX_PACKAGES), ensure_ascii=ascii).encode()
    whole = list(sbom.decode_sbom(data, limits=sbom.SbomLimits()).packages)
    streamed = list(sbom.decode_sbom(data, limits=sbom.SbomLimits(max_whole=0)).packages)
    assert whole == streamed
    purls = [None] * 3 + ["pkg:npm/d@1", None, None, "pkg:x/%C3%A9", None, None]
    assert [p.purl for p in whole] == purls
    licenses = [p.licenses for p in whole]
    assert licenses[:3] + licenses[-2:] == [
        ("MIT",),
        ("MIT",),
        (),
        ("MIT", "Apache-2.0"),
        ("BSD-3-Clause",),
    ]


@pytest.mark.parametrize(
    ("package", "message"),
    [
        ({"name": "a\u0000b"}, r"packages\[1\].name: string contains NUL"),
        ({"name": "x" * 11}, r"packages\[1\].name: string of 11 characters is over the limit"),
        ({"licenseDeclared": ["MIT"]}, r"packages\[1\].licenseDeclared: expected a string"),
        ({"externalRefs": [7]}, r"externalRefs\[0\]: expected an object, got a number"),
        (
            {"externalRefs": [{"referenceType": "purl", "referenceLocator": "\u0000"}]},
            r"externalRefs\[0\].referenceLocator: string contains NUL",
        ),
        (
            {"externalRefs": [{"referenceType": "purl", "referenceLocator": "x" * 11}]},
            r"externalRefs\[0\].referenceLocator: string of 11 characters",
        ),
        (
            {"externalRefs": [{"referenceType": "purl", "referenceLocator": None}]},
            r"externalRefs\[0\].referenceLocator: expected a string",
        ),
    ],
)
def test_hostile_spdx_package_after_a_good_one(package: Any, message: str) -> None:
    # A good package first: the refusal comes from the second, whichever reader takes it.
    data = json.dumps(spdx([{"name": "ok"}, package])).encode()
    record = sbom.decode_sbom(data, limits=sbom.SbomLimits(max_text=10))
    with pytest.raises(FormatError, match=message):
        list(record.packages)


def test_an_escaped_backslash_before_u0000_is_no_nul() -> None:
    data = json.dumps(spdx([{"name": "a\\u0000", "supplier": "\\ud800"}])).encode()
    assert b"\\\\u0000" in data  # the document is checked string by string, and is fine
    assert [(p.name, p.supplier) for p in packages_of(json.loads(data))] == [
        ("a\\u0000", "\\ud800")
    ]


def test_an_unpaired_surrogate_in_an_spdx_package(reader: str) -> None:
    data = json.dumps(spdx([{"name": "ok"}, {"supplier": "a\ud800"}])).encode()
    record = sbom.decode_sbom(data)
    if reader == "streamed":  # ijson's C backend makes it "?"
        assert [p.supplier for p in record.packages] == [None, "a?"]
        return
    with pytest.raises(FormatError, match=r"packages\[1\].supplier: string contains an unpaired"):
        list(record.packages)


# CycloneDX components of a plain parsed document are read by dictionary look-ups too, nested
# ones with them; any component that is not what the generic reads take goes to them.
ODD_CDX_COMPONENTS: list[Any] = [
    {"name": "a", "version": None, "purl": None, "type": "library", "group": "g", "x": [[{}]]},
    {"name": "b", "licenses": [{"license": {"id": "MIT"}}, {"license": {"id": "MIT"}}]},
    {"name": "c", "licenses": [{"expression": "MIT OR Apache-2.0"}, {"license": {"name": "X"}}]},
    # An expression leaves the licence unread, whatever it holds: as the reads.
    {"name": "d", "licenses": [{"expression": "MIT", "license": {"id": 7}}]},
    {"name": "d2", "licenses": [{"expression": "MIT", "license": {"id": "Apache-2.0"}}]},
    {"name": "e", "licenses": [{"expression": "", "license": {"id": "", "name": "Custom"}}]},
    {"name": "f", "licenses": [{"license": None}, {"license": {}}, {}], "supplier": None},
    {"name": "g", "supplier": {"name": "Acme", "url": ["x"]}, "components": []},
    {"name": "h", "supplier": {"name": None}, "components": None, "licenses": None},
    {"name": "é", "purl": "pkg:npm/%C3%A9@1", "components": [{"name": "i", "components": [{}]}]},
    {"version": "1", "purl": "pkg:npm/j@1"},
]
REAL_LIMITS = sbom.SbomLimits  # the class itself, not the streamed fixture's stand-in


def _outcome(data: bytes, limits: sbom.SbomLimits) -> list[PackageRecord] | str:
    try:
        return list(sbom.decode_sbom(data, limits=limits).packages)
    except FormatError as exc:
        return f"refused: {exc}"


@pytest.mark.parametrize("ascii", [True, False])
def test_parsed_and_streamed_cyclonedx_components_are_the_same(ascii: bool) -> None:
    data = json.dumps(cdx(ODD_CDX_COMPONENTS), ensure_ascii=ascii).encode()
    whole = _outcome(data, REAL_LIMITS())
    assert whole == _outcome(data, REAL_LIMITS(max_whole=0))
    assert isinstance(whole, list)
    assert [p.name for p in whole] == [*"abcd", "d2", *"efgh", None, "i", "é", "j"]
    assert [p.licenses for p in whole[1:7]] == [
        ("MIT",),
        ("MIT OR Apache-2.0", "X"),
        ("MIT",),
        ("MIT",),
        ("Custom",),
        (),
    ]
    assert [p.supplier for p in whole[6:9]] == [None, "Acme", None]


# Values each field of a component may hold, good then bad: random components built from them
# are read the same, or refused with the same words, whichever reader takes them.
_VALUES: dict[str, tuple[list[Any], list[Any]]] = {
    "name": (["a", None, ""], [1, "x" * 11]),
    "version": (["1.0", None, ""], [[]]),
    "purl": (["pkg:npm/a@1", None, "not a purl"], [{}, "pkg:x/" + "y" * 20]),
    "type": (["library", None], [True]),
    "group": (["org", None], [2.5]),
    "licenses": (
        [
            None,
            [],
            [{"license": {"id": "MIT"}}],
            [{"expression": "MIT", "license": {"id": 1}}],
            [{"expression": "MIT", "license": {"id": "BSD"}}],
            [{"license": {"name": "X", "id": None}}],
            [{"license": {"id": "MIT"}}, {"expression": "MIT"}],
        ],
        [
            [{"expression": 1}],
            [{"license": []}],
            ["MIT"],
            {"license": {}},
            [{"license": {"id": "MIT"}}] * 3,
            [{"license": {"id": "x" * 11}}],
        ],
    ),
    "supplier": ([None, {"name": "Acme"}, {}], [{"name": 3}, "Acme", {"name": "x" * 11}]),
}


def _random_component(rng: random.Random, depth: int) -> Any:
    if rng.random() < 0.02:
        return rng.choice([1, "x", None, []])
    component = {
        key: rng.choice(bad if rng.random() < 0.03 else good)
        for key, (good, bad) in _VALUES.items()
        if rng.random() < 0.6
    }
    if depth < 5 and rng.random() < 0.45:
        kids = [_random_component(rng, depth + 1) for _ in range(rng.randrange(3))]
        component["components"] = kids if rng.random() < 0.95 else rng.choice([None, {}])
    return component


def test_random_components_read_the_same_by_either_reader() -> None:
    rng = random.Random(20261207)
    limits = {"max_text": 10, "max_licenses": 2, "max_component_nesting": 3}
    refused = 0
    for _ in range(1000):
        doc = cdx([_random_component(rng, 1) for _ in range(rng.randrange(1, 4))])
        data = json.dumps(doc).encode()
        whole = _outcome(data, REAL_LIMITS(**limits))
        assert whole == _outcome(data, REAL_LIMITS(max_whole=0, **limits)), doc
        refused += isinstance(whole, str)
    assert 100 < refused < 900  # both kinds of outcome were compared, many times


def test_good_components_of_a_plain_document_are_read_from_their_nodes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The fast path is taken (a fast path that always gave up would pass the tests above)."""

    def generic(*args: object) -> None:
        raise AssertionError("read by the generic reads")

    monkeypatch.setattr(_cyclonedx, "_component", generic)
    doc = cdx(
        [{"name": "a", "licenses": [{"license": {"id": "MIT"}}], "components": [{"name": "b"}]}]
    )
    found = list(sbom.decode_sbom(json.dumps(doc).encode(), limits=REAL_LIMITS()).packages)
    assert [(p.name, p.licenses) for p in found] == [("b", ()), ("a", ("MIT",))]
