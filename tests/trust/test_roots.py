"""Trust roots: the wheel's shipped Sigstore roots (read directly, pinned), keys, PKI roots."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sigstore
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from catalog.trust import roots
from catalog.trust._internal.sigstore_root import Instance
from catalog.trust.errors import TrustRootError
from catalog.trust.roots import TrustConfig
from tests.formats.fixtures import COSIGN_LEGACY
from tests.trust.verify_support import (
    COSIGN_BUNDLE,
    cosign_layer,
    legacy_keys,
    linuxera_pki,
    root_with,
)

SHIPPED = Path(sigstore.__file__).parent / "_store"
# The roots the installed sigstore wheel ships, as reviewed. A sigstore upgrade that rotates a
# root fails here on purpose: look at what changed before updating the pin.
PINNED_SHA256 = {
    "production": "6494e21ea73fa7ee769f85f57d5a3e6a08725eae1e38c755fc3517c9e6bc0b66",
    "staging": "81f5af777952d2c3955062ad56924c05ca916b5d49f3a0bce945faa475a8b1cc",
}
REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("instance", "tuf"),
    [
        ("production", "https%3A%2F%2Ftuf-repo-cdn.sigstore.dev"),
        ("staging", "https%3A%2F%2Ftuf-repo-cdn.sigstage.dev"),
    ],
)
def test_shipped_roots_are_the_wheels_files(instance: Instance, tuf: str) -> None:
    root = roots.sigstore_instance(instance)

    assert root.id == f"sigstore:{instance}"
    assert root.path == SHIPPED / tuf / "trusted_root.json"
    assert root.data == root.path.read_bytes()
    assert root.sha256 == PINNED_SHA256[instance]


def test_production_root_contents() -> None:
    root = roots.sigstore_instance("production")

    assert {log.url for log in root.rekor_logs} == {
        "https://rekor.sigstore.dev",
        "https://log2025-1.rekor.sigstore.dev",
    }
    rekor = root.rekor_log("c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d")
    assert rekor is not None
    assert rekor.url == "https://rekor.sigstore.dev"
    assert len(root.fulcio) == 2
    assert len(root.ct_logs) == 2
    assert len(root.timestamp_authorities) == 1


def test_a_root_parsed_when_first_used_is_the_same_trust(tmp_path: Path) -> None:
    """A command answering from stored verifications never parses Sigstore's roots: deferred,
    the version is the same, the contents the same when first asked for, and a bad file is
    refused then, as it is at once by default."""
    parsed = TrustConfig(sigstore=(roots.sigstore_instance("production"),))
    deferred = TrustConfig(sigstore=(roots.sigstore_instance("production", parse=False),))
    assert deferred.version == parsed.version
    assert [log.url for log in deferred.sigstore[0].rekor_logs] == [
        log.url for log in parsed.sigstore[0].rekor_logs
    ]
    bad = tmp_path / "bad.json"
    bad.write_text('{"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1"}')
    later = roots.trusted_root_file("x", bad, parse=False)
    with pytest.raises(TrustRootError, match=r"bad\.json is not a valid trusted root"):
        later.fulcio  # noqa: B018 -- the first use parses


def test_a_key_known_by_its_der_is_the_same_trust_and_loads_when_used() -> None:
    pem = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    loaded = roots.public_key("release", pem)
    known = roots.known_key("release", loaded.der)
    assert known.fingerprint == loaded.fingerprint
    assert TrustConfig(keys=(known,)).version == TrustConfig(keys=(loaded,)).version
    assert (
        known.key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        == pem
    )


def test_offline_verification_never_touches_the_sigstore_cache(tmp_path: Path) -> None:
    """In a fresh HOME: a legacy signature verifies without importing sigstore, a bundle through
    sigstore, and nothing is written under ~/.cache/sigstore-python (nor anywhere in HOME)."""
    home = tmp_path / "home"
    home.mkdir()
    script = """
import hashlib, sys
from catalog.trust import roots
from catalog.trust.verify import verify_bundle
from tests.trust.verify_support import cosign_layer, manifest_digest, production, verify_cosign
from tests.trust.verify_support import SIGSTORE_PYTHON
trust = production()
case = "dir-img-cosign-fulcio-rekor-valid"
legacy = verify_cosign(cosign_layer(case), manifest_digest(case), trust)
assert legacy.verified, legacy.reason
assert "sigstore" not in sys.modules, "a legacy signature must not need sigstore-python"
wheel = (SIGSTORE_PYTHON / "bundle_v3_github.whl").read_bytes()
bundle = (SIGSTORE_PYTHON / "bundle_v3_github.whl.sigstore").read_bytes()
result = verify_bundle(bundle, "sha256:" + hashlib.sha256(wheel).hexdigest(), trust)
assert result.verified, result.reason
assert "sigstore.verify" in sys.modules
print(trust.sigstore[0].path)
"""
    env = {
        **os.environ,
        "HOME": str(home),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
    }
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True
    )

    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()) == SHIPPED / "https%3A%2F%2Ftuf-repo-cdn.sigstore.dev" / (
        "trusted_root.json"
    )
    assert not (home / ".cache" / "sigstore-python").exists()
    assert list(home.rglob("*")) == []


def test_trusted_root_file_and_its_errors(tmp_path: Path) -> None:
    root = roots.trusted_root_file("pgi", COSIGN_BUNDLE / "trusted_root_pgi.json")
    assert root.id == "trusted-root:pgi"
    assert len(root.fulcio) == 2

    with pytest.raises(TrustRootError, match=r"cannot read .*missing\.json"):
        roots.trusted_root_file("x", tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1"}')
    with pytest.raises(TrustRootError, match=r"bad\.json is not a valid trusted root"):
        roots.trusted_root_file("x", bad)
    no_start = root_with(
        tmp_path / "no-start.json",
        COSIGN_BUNDLE / "trusted_root_pgi.json",
        lambda doc: doc["tlogs"][0]["publicKey"]["validFor"].pop("start"),
    )
    # A validity range without its start is malformed, never "valid since forever".
    with pytest.raises(TrustRootError, match="not a valid trusted root"):
        roots.trusted_root_file("x", no_start)
    with pytest.raises(TrustRootError, match="trust root name"):
        roots.trusted_root_file("no spaces", COSIGN_BUNDLE / "trusted_root_pgi.json")


def test_public_keys_of_every_supported_kind() -> None:
    cosign = roots.public_key("cosign", (COSIGN_LEGACY / "cosign.pub").read_bytes())
    assert cosign.id == "key:cosign"
    assert cosign.name == "cosign"
    assert len(cosign.fingerprint) == 64

    for private in (
        ec.generate_private_key(ec.SECP384R1()),
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
    ):
        pem = private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        assert roots.public_key("k", pem).id == "key:k"


def test_public_key_errors() -> None:
    with pytest.raises(TrustRootError, match="key:x: not a PEM public key"):
        roots.public_key("x", b"-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----\n")
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()
    pem = small.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(TrustRootError, match="RSA key of 1024 bits is too small"):
        roots.public_key("x", pem)
    k1 = ec.generate_private_key(ec.SECP256K1()).public_key()
    pem = k1.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(TrustRootError, match="unsupported elliptic curve secp256k1"):
        roots.public_key("x", pem)


def test_pki_roots() -> None:
    pki = linuxera_pki()
    assert pki.id == "pki:linuxera"
    assert len(pki.roots) == 1
    assert len(pki.intermediates) == 1

    leaf = cosign_layer("dir-img-cosign-fulcio-rekor-valid").annotations[
        "dev.sigstore.cosign/certificate"
    ]
    with pytest.raises(TrustRootError, match=r"pki:x: .* is not a CA certificate"):
        roots.pki_root("x", leaf.encode())
    with pytest.raises(TrustRootError, match="not a PEM certificate bundle"):
        roots.pki_root("x", (COSIGN_LEGACY / "cosign.pub").read_bytes())
    with pytest.raises(TrustRootError, match="no root certificate"):
        roots.pki_root("x", b"")


def test_version_hashes_all_material_and_is_stable() -> None:
    keys = legacy_keys()
    base = TrustConfig(sigstore=(roots.sigstore_instance("production"),))
    again = TrustConfig(sigstore=(roots.sigstore_instance("production"),))
    with_keys = TrustConfig(sigstore=base.sigstore, keys=keys)
    reordered = TrustConfig(sigstore=base.sigstore, keys=tuple(reversed(keys)))
    with_pki = TrustConfig(sigstore=base.sigstore, keys=keys, pki=(linuxera_pki(),))
    renamed = TrustConfig(
        sigstore=base.sigstore,
        keys=(roots.public_key("other", (COSIGN_LEGACY / "cosign.pub").read_bytes()), keys[1]),
    )
    staging = TrustConfig(sigstore=(roots.sigstore_instance("staging"),))

    assert len(base.version) == 16
    int(base.version, 16)
    assert base.version == again.version
    assert with_keys.version == reordered.version  # order does not change what is trusted
    versions = {base.version, with_keys.version, with_pki.version, renamed.version, staging.version}
    assert len(versions) == 5
    assert with_pki.root_ids == (
        "sigstore:production",
        "key:cosign",
        "key:cosign2",
        "pki:linuxera",
    )
    # The version is a hash of the material, not of the file names it came from.
    assert hashlib.sha256(base.sigstore[0].data).hexdigest() == PINNED_SHA256["production"]


def test_duplicate_root_ids_are_refused() -> None:
    key = roots.public_key("cosign", (COSIGN_LEGACY / "cosign.pub").read_bytes())
    with pytest.raises(TrustRootError, match="unique: key:cosign"):
        TrustConfig(keys=(key, key))


def test_load_from_files() -> None:
    trust = roots.load(
        instances=("production", "staging"),
        trusted_roots=[("pgi", COSIGN_BUNDLE / "trusted_root_pgi.json")],
        key_files=[("cosign", COSIGN_LEGACY / "cosign.pub")],
        pki_files=[
            (
                "linuxera",
                COSIGN_LEGACY / "pki_root_crts.pem",
                COSIGN_LEGACY / "pki_intermediate_crts.pem",
            )
        ],
    )
    assert trust.root_ids == (
        "sigstore:production",
        "sigstore:staging",
        "trusted-root:pgi",
        "key:cosign",
        "pki:linuxera",
    )
    with pytest.raises(TrustRootError, match=r"key:k: cannot read"):
        roots.load(key_files=[("k", COSIGN_LEGACY / "nope.pub")])


def test_a_command_lines_trust_is_the_default_settings() -> None:
    # `xregistry verify` builds its trust without the settings' pydantic models: the same trust.
    from catalog.app.trust_config import TrustSettings

    assert roots.public_good().version == TrustSettings().build().version
    both = TrustSettings(sigstore=("production", "staging")).build()
    deferred = roots.public_good(staging=True, parse_sigstore=False)
    assert deferred.version == both.version
    assert [r.id for r in deferred.sigstore] == ["sigstore:production", "sigstore:staging"]
