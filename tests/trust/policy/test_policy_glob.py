"""Image globs: ``*`` stays within a path segment, ``**`` crosses them; references normalised."""

from __future__ import annotations

import pytest

from catalog.trust.policy.image_globs import (
    check_glob,
    directories,
    glob_regex,
    literal_directory,
    reference_candidates,
)
from catalog.trust.policy.loading import load_policy_set
from tests.trust.policy.test_facts import IMAGE, OTHER_IMAGE


def matches(glob: str, reference: str | None, digest: str = IMAGE) -> bool:
    pattern = glob_regex([check_glob(glob)])
    return any(pattern.fullmatch(c) for c in reference_candidates(reference, digest))


CASES: list[tuple[str, str, bool]] = [
    # * covers one segment: every tag and digest of repositories directly under shop/
    ("registry.acme.io/shop/*", "registry.acme.io/shop/api:1.4", True),
    ("registry.acme.io/shop/*", "registry.acme.io/shop/api", True),
    ("registry.acme.io/shop/*", f"registry.acme.io/shop/api@{IMAGE}", True),
    ("registry.acme.io/shop/*", "registry.acme.io/shop/team/api:1.4", False),
    ("registry.acme.io/shop/*", "registry.acme.io/shopping/api:1.4", False),
    ("registry.acme.io/shop/*", "registry.acme.io/shop", False),
    # ** crosses segments
    ("registry.acme.io/shop/**", "registry.acme.io/shop/team/api:1.4", True),
    ("registry.acme.io/shop/**", "registry.acme.io/shop/api:1.4", True),
    ("registry.acme.io/shop/**", "registry.acme.io/shopping/api", False),
    ("registry.acme.io/**", "registry.acme.io:5000/shop/api", False),
    ("**", "quay.io/containers/podman:v5", True),
    ("**", "ubuntu", True),
    # a repository without wildcard means all of its tags; a tag pattern only those tags
    ("registry.acme.io/shop/api", "registry.acme.io/shop/api:1.4", True),
    ("registry.acme.io/shop/api", "registry.acme.io/shop/api-v2:1.4", False),
    ("registry.acme.io/shop/api:1.*", "registry.acme.io/shop/api:1.4", True),
    ("registry.acme.io/shop/api:1.*", "registry.acme.io/shop/api:2.0", False),
    ("registry.acme.io/shop/api:1.*", "registry.acme.io/shop/api", False),
    ("registry.acme.io/shop/ap?", "registry.acme.io/shop/api:1.4", True),
    ("registry.acme.io/shop/ap?", "registry.acme.io/shop/ap:1.4", False),
    # dots are literal, hosts may be patterns, ports are part of the host
    ("registry.acme.io/shop/a.i", "registry.acme.io/shop/abi", False),
    ("*.acme.io/**", "registry.acme.io/shop/api:1.4", True),
    ("*.acme.io/**", "registry.acme.io.evil.example/shop/api", False),
    ("localhost:5000/**", "localhost:5000/shop/api:1", True),
    # Docker Hub names are normalised on both sides
    ("ubuntu", "ubuntu:22.04", True),
    ("ubuntu", "docker.io/library/ubuntu", True),
    ("ubuntu:22.*", "index.docker.io/library/ubuntu:22.04", True),
    ("docker.io/ubuntu", "ubuntu", True),
    ("index.docker.io/library/*", "redis:7", True),
    ("bitnami/*", "bitnami/redis:7", True),
    ("bitnami/*", "docker.io/bitnami/redis", True),
    ("docker.io/library/*", "bitnami/redis", False),
    # a digest pin applies to the digest being judged, whatever tag was asked for
    (f"registry.acme.io/shop/api@{IMAGE}", "registry.acme.io/shop/api:1.4", True),
    (f"registry.acme.io/shop/api@{OTHER_IMAGE}", "registry.acme.io/shop/api:1.4", False),
    # references the OCI grammar does not know are offered as written
    ("oci:/srv/layouts/**", "oci:/srv/layouts/shop:1.4", True),
]


@pytest.mark.parametrize(("glob", "reference", "expected"), CASES)
def test_glob_semantics(glob: str, reference: str, expected: bool) -> None:
    assert matches(glob, reference) is expected


def test_an_image_without_a_reference_only_meets_catch_all_globs() -> None:
    assert matches("**", None)
    assert not matches("registry.acme.io/**", None)


def test_globs_are_normalised_when_loaded() -> None:
    assert check_glob("ubuntu") == "docker.io/library/ubuntu"
    assert check_glob("bitnami/*") == "docker.io/bitnami/*"
    assert check_glob("index.docker.io/library/redis") == "docker.io/library/redis"
    assert check_glob("**") == "**"
    assert check_glob("**/api") == "**/api"
    assert check_glob("registry.acme.io/shop/**") == "registry.acme.io/shop/**"


def test_candidates_name_tag_and_digest() -> None:
    assert reference_candidates("registry.acme.io/shop/api:1.4", IMAGE) == (
        "registry.acme.io/shop/api",
        "registry.acme.io/shop/api:1.4",
        f"registry.acme.io/shop/api@{IMAGE}",
    )
    # Asked by another digest than the one judged: both are offered.
    assert reference_candidates(f"registry.acme.io/shop/api@{OTHER_IMAGE}", IMAGE) == (
        "registry.acme.io/shop/api",
        f"registry.acme.io/shop/api@{OTHER_IMAGE}",
        f"registry.acme.io/shop/api@{IMAGE}",
    )


def test_literal_directories() -> None:
    assert literal_directory("registry.acme.io/shop/**") == "registry.acme.io/shop/"
    assert literal_directory("registry.acme.io/shop/api:1.*") == "registry.acme.io/shop/"
    assert literal_directory("registry.acme.io/shop/api") == "registry.acme.io/shop/"
    assert literal_directory("registry.acme.io/sh?p/api") == "registry.acme.io/"
    assert literal_directory("*.acme.io/**") == ""
    assert literal_directory("**") == ""
    assert set(directories(("registry.acme.io/shop/api", "registry.acme.io/shop/api:1"))) == {
        "",
        "registry.acme.io/",
        "registry.acme.io/shop/",
    }


def test_a_set_finds_exactly_the_policies_a_full_scan_finds() -> None:
    # The set indexes policies by their globs' literal directories; it must never miss one.
    globs = sorted({glob for glob, _, _ in CASES})
    text = "policies:\n" + "".join(
        f"  - name: p{i}\n    images: ['{glob}']\n" for i, glob in enumerate(globs)
    )
    policy_set = load_policy_set(text)
    for _, reference, _ in CASES:
        candidates = reference_candidates(reference, IMAGE)
        full_scan = [p for p in policy_set.policies if p.applies_to(candidates)]
        assert policy_set.applicable(candidates) == full_scan, reference
    assert policy_set.applicable(reference_candidates(None, IMAGE)) == [
        p for p in policy_set.policies if p.globs == ("**",)
    ]
