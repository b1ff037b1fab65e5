from pathlib import Path

import pytest

from catalog.oci.digest import Digest
from catalog.oci.errors import InvalidReference
from catalog.oci.reference import (
    ImageReference,
    LayoutReference,
    parse_image_reference,
    parse_reference,
)

HEX = "a" * 64


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        ("ubuntu", "docker.io", "library/ubuntu", "latest", None),
        ("ubuntu:24.04", "docker.io", "library/ubuntu", "24.04", None),
        ("bitnami/redis", "docker.io", "bitnami/redis", "latest", None),
        ("index.docker.io/ubuntu", "docker.io", "library/ubuntu", "latest", None),
        ("docker.io/library/ubuntu:1", "docker.io", "library/ubuntu", "1", None),
        ("localhost/app", "localhost", "app", "latest", None),
        ("localhost:5000/a/b/c:v1", "localhost:5000", "a/b/c", "v1", None),
        ("127.0.0.1:5000/app:tag", "127.0.0.1:5000", "app", "tag", None),
        ("[::1]:5000/app", "[::1]:5000", "app", "latest", None),
        ("ghcr.io/acme/api@sha256:" + HEX, "ghcr.io", "acme/api", None, "sha256:" + HEX),
        ("ghcr.io/acme/api:1.4@sha256:" + HEX, "ghcr.io", "acme/api", "1.4", "sha256:" + HEX),
        (
            "reg.example.com/a__b/c-d.e_f:Tag_1.x-y",
            "reg.example.com",
            "a__b/c-d.e_f",
            "Tag_1.x-y",
            None,
        ),
        ("Registry.Example:443/x", "Registry.Example:443", "x", "latest", None),
    ],
)
def test_parses_valid_references(
    text: str, registry: str, repository: str, tag: str | None, digest: str | None
) -> None:
    ref = parse_image_reference(text, default_tag="latest")
    assert ref.registry == registry
    assert ref.repository == repository
    assert ref.tag == tag
    assert (str(ref.digest) if ref.digest else None) == digest


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        (" ubuntu", "spaces"),
        ("https://ghcr.io/acme/api", "not a URL"),
        ("acme/Case", "path component"),
        ("ghcr.io/acme/api:", "tag"),
        ("ghcr.io/acme/api:-bad", "tag"),
        ("ghcr.io/acme/api:" + "x" * 129, "tag"),
        ("ghcr.io/acme/api@sha256:abc", "sha256"),
        ("ghcr.io/acme/api@md5:" + HEX[:32], "unsupported digest algorithm"),
        ("ghcr.io/acme//api", "path component"),
        ("ghcr.io/acme/api-", "path component"),
        ("a" * 256, "longer than 255"),
        ("bad_host!.io/x", "bad registry host"),
    ],
)
def test_refuses_invalid_references_with_a_reason(text: str, reason: str) -> None:
    with pytest.raises(InvalidReference, match=reason):
        parse_image_reference(text)


def test_ref_prefers_digest_and_str_round_trips() -> None:
    ref = parse_image_reference("ghcr.io/acme/api:1.4@sha256:" + HEX)
    assert ref.ref == "sha256:" + HEX
    assert str(ref) == "ghcr.io/acme/api:1.4@sha256:" + HEX
    assert parse_image_reference(str(ref)) == ref
    assert ImageReference("r", "x", "t").ref == "t"


@pytest.mark.parametrize(
    ("text", "path", "tag", "digest"),
    [
        ("oci:/tmp/layout", "/tmp/layout", None, None),
        ("oci:./rel/dir:v1", "rel/dir", "v1", None),
        ("oci:/a/b@sha256:" + HEX, "/a/b", None, Digest("sha256", HEX)),
    ],
)
def test_parses_layout_references(
    text: str, path: str, tag: str | None, digest: Digest | None
) -> None:
    assert parse_reference(text) == LayoutReference(Path(path), tag, digest)


def test_layout_reference_needs_a_path() -> None:
    with pytest.raises(InvalidReference, match="directory path"):
        parse_reference("oci:")
