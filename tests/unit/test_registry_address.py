"""What users write as a registry's host, an interval and a platform: accepted whole or refused
with one line, never stored half understood."""

from __future__ import annotations

import pytest

from catalog.errors import InvalidArgument, NotFound
from catalog.oci.manifest import parse_manifest
from catalog.oci.platforms import PlatformChoice, choose
from catalog.schedules import parse_duration
from catalog.store.registries import RegistrySpec, registry_address, validate_host, validate_spec


@pytest.mark.parametrize(
    ("written", "insecure", "ca", "stored"),
    [
        ("localhost:5000", False, None, ("localhost:5000", False)),
        ("http://127.0.0.1:5000", False, None, ("127.0.0.1:5000", True)),
        ("http://127.0.0.1:5000/", False, None, ("127.0.0.1:5000", True)),
        ("HTTP://reg.acme.io", False, None, ("reg.acme.io", True)),
        ("https://reg.acme.io:8443", False, None, ("reg.acme.io:8443", False)),
        ("https://localhost:5443", False, "corp", ("localhost:5443", False)),
        ("http://[::1]:5000", False, None, ("[::1]:5000", True)),
        ("oci:local/shop", False, None, ("oci:local/shop", False)),
    ],
)
def test_accepted_addresses(
    written: str, insecure: bool, ca: str | None, stored: tuple[str, bool]
) -> None:
    assert registry_address(written, insecure, ca) == stored
    assert validate_host(written) == stored[0]


@pytest.mark.parametrize(
    ("written", "insecure", "ca", "message"),
    [
        ("http://127.0.0.1:5000/v2/", False, None, "without a path"),
        ("https://reg.acme.io/acme", False, None, "without a path"),
        ("https://reg.acme.io?token=s3cret", False, None, "without a path"),
        ("https://user:s3cret@reg.acme.io", False, None, "carries no credentials"),
        ("https://user:s3cret@reg.acme.io/x", False, None, "carries no credentials"),
        ("ftp://reg.acme.io", False, None, "http://HOST"),
        ("https://reg.acme.io", True, None, "insecure asks for plain HTTP"),
        ("http://reg.acme.io", False, "corp", "a CA file asks for TLS"),
        ("https://localhost:5000", False, None, "--ca"),
        ("http://", False, None, "not a registry host"),
        ("http://bad host", False, None, "not a registry host"),
        ("http://rég.example", False, None, "not a registry host"),
        ("h" * 300, False, None, "at most 255"),
    ],
)
def test_refused_addresses(written: str, insecure: bool, ca: str | None, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message) as raised:
        registry_address(written, insecure, ca)
    assert "\n" not in str(raised.value)
    assert "s3cret" not in str(raised.value)


def test_the_spec_is_stored_split() -> None:
    spec = validate_spec(RegistrySpec("local", "http://127.0.0.1:5000"))
    assert (spec.host, spec.insecure) == ("127.0.0.1:5000", True)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("15m", 900), ("1h30m", 5400), ("2d12h", 216000), ("1d2h3m4s", 93784)],
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text", ["", "0s", "1m1h", "1h 30m", "1.5h", "h", "-1m", "٣m", "3661d", "9999999s", "1hh"]
)
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


def _index(*platforms: str) -> bytes:
    import json

    entries = []
    for n, text in enumerate(platforms):
        os, arch, *variant = text.split("/")
        platform = {"os": os, "architecture": arch, **({"variant": variant[0]} if variant else {})}
        entries.append(
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": f"sha256:{n:064x}",
                "size": 1,
                "platform": platform,
            }
        )
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": entries,
        }
    ).encode()


def test_platform_choice() -> None:
    index = parse_manifest(_index("linux/amd64", "linux/arm/v6", "linux/arm/v7", "linux/arm64"))
    assert str(choose(index, PlatformChoice.parse("linux/arm/v7")).digest).endswith("2")
    assert str(choose(index, PlatformChoice.parse("linux/arm64/v8")).digest).endswith("3")
    with pytest.raises(InvalidArgument, match="linux/arm/v6, linux/arm/v7; give the variant"):
        choose(index, PlatformChoice.parse("linux/arm"))
    with pytest.raises(NotFound, match="its platforms: linux/amd64, linux/arm/v6"):
        choose(index, PlatformChoice.parse("windows/amd64"))
    for bad in ("linux", "linux/amd64/v1/x", "Linux/AMD64", "linux//v7", "linux/ämd64", "x" * 500):
        with pytest.raises(InvalidArgument, match="invalid platform"):
            PlatformChoice.parse(bad)
