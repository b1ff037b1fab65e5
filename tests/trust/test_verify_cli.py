"""``xregistry trust verify-bundle``: arguments, identity matching, exit status, lazy imports."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from catalog.cli.trust import trust_group
from tests.formats.fixtures import CONFORMANCE
from tests.harness.limited import run_limited
from tests.trust.verify_support import CONFORMANCE_IDENTITY as DEFAULT_IDENTITY
from tests.trust.verify_support import CONFORMANCE_ISSUER as DEFAULT_ISSUER

REPO = Path(__file__).resolve().parents[2]
HAPPY = CONFORMANCE / "happy-path-v0.2" / "bundle.sigstore.json"
STAGING = CONFORMANCE / "bundle-from-wrong-instance_fail" / "bundle.sigstore.json"
A_TXT = CONFORMANCE / "a.txt"


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(trust_group, ["verify-bundle", *map(str, args)])


def identity(who: str = DEFAULT_IDENTITY, issuer: str = DEFAULT_ISSUER) -> list[str]:
    return ["--certificate-identity", who, "--certificate-oidc-issuer", issuer]


def test_verified_bundle_exits_zero_with_the_reason_on_stdout() -> None:
    result = run("--bundle", HAPPY, *identity(), A_TXT)

    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("verified: sigstore-python verified the bundle against")


def test_artifact_may_be_given_by_digest() -> None:
    digest = "sha256:" + hashlib.sha256(A_TXT.read_bytes()).hexdigest()

    assert run("--bundle", HAPPY, *identity(), digest).exit_code == 0
    assert run("--bundle", HAPPY, *identity(), "sha256:" + "0" * 64).exit_code == 1


def test_identity_and_issuer_are_matched_exactly() -> None:
    other_who = run("--bundle", HAPPY, *identity(DEFAULT_IDENTITY + "x"), A_TXT)
    other_issuer = run("--bundle", HAPPY, *identity(issuer="https://accounts.google.com"), A_TXT)

    assert other_who.exit_code == 1
    assert other_who.stderr == (
        f"xregistry: not verified: signed by {DEFAULT_IDENTITY}, not {DEFAULT_IDENTITY}x\n"
    )
    assert other_issuer.exit_code == 1
    assert other_issuer.stderr == (
        f"xregistry: not verified: identity issued by {DEFAULT_ISSUER}, "
        "not https://accounts.google.com\n"
    )


def test_staging_selects_the_staging_root() -> None:
    production = run("--bundle", STAGING, *identity(), A_TXT)
    staging = run("--bundle", STAGING, "--staging", *identity(), A_TXT)

    assert production.exit_code == 1
    assert "in no trusted root (sigstore:production)" in production.stderr
    assert staging.exit_code == 0, staging.stderr


def test_a_key_does_not_accept_a_certificate_signature() -> None:
    key = CONFORMANCE / "managed-key-happy-path" / "key.pub"

    result = run("--bundle", HAPPY, "--key", key, A_TXT)

    assert result.exit_code == 1
    assert "the bundle is signed by a certificate" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "give --certificate-identity and --certificate-oidc-issuer, or --key"),
        (("--certificate-identity", "x"), "give --certificate-identity and"),
        (
            ("--key", CONFORMANCE / "managed-key-happy-path" / "key.pub", *identity()),
            "give either --key or",
        ),
        (
            (
                *identity(),
                "--staging",
                "--trusted-root",
                CONFORMANCE / "rekor2-happy-path" / "trusted_root.json",
            ),
            "--staging and --trusted-root exclude each other",
        ),
    ],
)
def test_usage_errors(args: tuple[str | Path, ...], message: str) -> None:
    result = run("--bundle", HAPPY, *args, A_TXT)

    assert result.exit_code == 2
    assert message in result.stderr


def test_missing_artifact_is_a_usage_error(tmp_path: Path) -> None:
    result = run("--bundle", HAPPY, *identity(), tmp_path / "nope.txt")

    assert result.exit_code == 2
    assert "cannot read artifact" in result.stderr


VERIFY_BUNDLE = (sys.executable, "-m", "catalog.cli.main", "trust", "verify-bundle")


def test_a_bundle_without_end_is_refused_at_the_cap() -> None:
    """A device (size 0 to stat) is read up to the cap, then refused in one line; it was read
    whole. In a process of its own, with 1 GiB of address space, so that no run can take more."""
    done = run_limited([*VERIFY_BUNDLE, "--bundle", "/dev/zero", *identity(), str(A_TXT)], 120)
    assert (done.returncode, done.stdout) == (2, ""), done.stderr[-2000:]
    assert done.stderr == "xregistry: error: bundle /dev/zero is over 67108864 bytes\n"


def test_an_artifact_from_a_pipe_is_read_whole() -> None:
    """A pipe's stat says 0 bytes: the artifact is what is read, not what stat tells."""
    with A_TXT.open("rb") as stdin:
        done = subprocess.run(
            [*VERIFY_BUNDLE, "--bundle", str(HAPPY), *identity(), "/dev/stdin"],
            cwd=REPO,
            stdin=stdin,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 0, done.stderr


def test_the_command_module_imports_no_trust_machinery() -> None:
    """``xregistry --help`` and every other command must not pay for sigstore (~300 ms)."""
    script = (
        "import sys, catalog.cli.trust; "
        "heavy = [m for m in ('sigstore', 'sigstore_models', 'catalog.trust.verify') "
        "if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
