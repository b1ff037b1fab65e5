"""``xregistry trust verify-bundle``: the sigstore-conformance client protocol, offline.

Unlike the catalog (which records identities for policies to judge), this command is asked about
one signer, so the certificate identity and issuer are matched here, exactly. Trust modules are
imported inside the command: ``sigstore`` alone costs ~300 ms, which other commands must not pay.
"""

from __future__ import annotations

import hashlib
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from catalog.cli.errors import reports_errors
from catalog.cli.output import echo_json, output_option
from catalog.errors import InvalidArgument
from catalog.files import FileTooLarge, read_capped

if TYPE_CHECKING:
    from catalog.trust.signatures import VerifiedSignature

_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_MAX_BUNDLE = 64 * 1024 * 1024
# Ed25519 key signatures can only be checked against the artifact itself; keep it in memory up
# to this size, beyond it verify from the digest alone.
_MAX_ARTIFACT_IN_MEMORY = 64 * 1024 * 1024
EXIT_NOT_VERIFIED = 1


@dataclass(frozen=True, slots=True)
class Signer:
    """Who must have signed: a certificate identity and issuer, or the given key."""

    identity: str | None
    issuer: str | None
    key: Path | None


@click.group("trust")
def trust_group() -> None:
    """Verify Sigstore and cosign signatures, offline."""


@trust_group.command("verify-bundle")
@click.option(
    "--bundle",
    "bundle_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The Sigstore bundle (v0.1 to v0.3).",
)
@click.option("--certificate-identity", help="The signing certificate's identity (SAN), exactly.")
@click.option("--certificate-oidc-issuer", help="The signing certificate's OIDC issuer, exactly.")
@click.option(
    "--key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="PEM public key the bundle must be signed with (instead of an identity).",
)
@click.option(
    "--trusted-root",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A trusted_root.json to verify against [default: the public-good production root].",
)
@click.option("--staging", is_flag=True, help="Verify against the public-good staging root.")
@click.argument("artifact")
@output_option
@reports_errors
def verify_bundle_command(
    bundle_path: Path,
    certificate_identity: str | None,
    certificate_oidc_issuer: str | None,
    key: Path | None,
    trusted_root: Path | None,
    staging: bool,
    artifact: str,
    output: str,
) -> None:
    """Verify that BUNDLE signs ARTIFACT (a FILE, or sha256:HEX).

    Exit status 0 means verified (with -o json, what verified it on stdout); otherwise the
    reason is on stderr. Everything is offline: the
    Sigstore roots are those shipped with the installed sigstore package.

    \b
    Example:
      xregistry trust verify-bundle --bundle a.txt.sigstore.json \\
        --certificate-identity https://github.com/org/app/.github/workflows/rel.yml@refs/tags/v1 \\
        --certificate-oidc-issuer https://token.actions.githubusercontent.com a.txt
    """
    signer = _signer(certificate_identity, certificate_oidc_issuer, key)
    if staging and trusted_root is not None:
        raise InvalidArgument("--staging and --trusted-root exclude each other")
    result = verify_bundle_file(bundle_path, artifact, signer, trusted_root, staging)
    problem = signer_mismatch(result, signer)
    if problem is not None:
        print(f"xregistry: not verified: {problem}", file=sys.stderr)
        raise SystemExit(EXIT_NOT_VERIFIED)
    if output == "json":
        echo_json(result)
    else:
        click.echo(result.reason)


def verify_bundle_file(
    bundle_path: Path, artifact: str, signer: Signer, trusted_root: Path | None, staging: bool
) -> VerifiedSignature:
    """Verify the bundle for the artifact under a trust configuration built for this request."""
    from catalog.trust import roots
    from catalog.trust.verify import verify_bundle

    sigstore = (
        roots.trusted_root_file("given", trusted_root)
        if trusted_root is not None
        else roots.sigstore_instance("staging" if staging else "production")
    )
    trust = roots.TrustConfig(
        sigstore=(sigstore,),
        keys=()
        if signer.key is None
        else (roots.public_key("given", roots.read(signer.key, "--key")),),
    )
    digest, data = _artifact(artifact)
    return verify_bundle(_read_bundle(bundle_path), digest, trust, artifact=data)


def signer_mismatch(result: VerifiedSignature, signer: Signer) -> str | None:
    """Why ``result`` does not answer the request, or ``None`` when it does."""
    if not result.verified:
        return result.reason
    if signer.key is not None:
        if result.method != "key":
            return f"the bundle is signed by a certificate ({result.identity}), not by --key"
        return None
    if result.method != "keyless":
        return "the bundle is signed with a key; give it with --key"
    if result.identity != signer.identity:
        return f"signed by {result.identity}, not {signer.identity}"
    if result.issuer != signer.issuer:
        return f"identity issued by {result.issuer}, not {signer.issuer}"
    return None


def _signer(identity: str | None, issuer: str | None, key: Path | None) -> Signer:
    if key is not None:
        if identity is not None or issuer is not None:
            raise InvalidArgument("give either --key or --certificate-identity/-oidc-issuer")
        return Signer(None, None, key)
    if identity is None or issuer is None:
        raise InvalidArgument("give --certificate-identity and --certificate-oidc-issuer, or --key")
    return Signer(identity, issuer, None)


def _artifact(text: str) -> tuple[str, bytes | None]:
    """(sha256 digest, the bytes when small enough to keep) of ``sha256:HEX`` or a file."""
    if _DIGEST.fullmatch(text):
        return text, None
    try:
        # Read, not stat: a pipe (`<(…)`), a device or /proc tells size 0 whatever follows.
        with Path(text).open("rb") as stream:
            data = stream.read(_MAX_ARTIFACT_IN_MEMORY + 1)
            digest = hashlib.sha256(data)
            if len(data) <= _MAX_ARTIFACT_IN_MEMORY:
                return f"sha256:{digest.hexdigest()}", data
            while chunk := stream.read(1 << 20):
                digest.update(chunk)
        return f"sha256:{digest.hexdigest()}", None
    except OSError as exc:
        raise InvalidArgument(f"cannot read artifact {text} ({exc.strerror})") from None


def _read_bundle(path: Path) -> bytes:
    try:
        return read_capped(path, _MAX_BUNDLE, pipes=True)  # read, not stat: see _artifact
    except FileTooLarge:
        raise InvalidArgument(f"bundle {path} is over {_MAX_BUNDLE} bytes") from None
    except OSError as exc:
        raise InvalidArgument(f"cannot read bundle {path} ({exc.strerror})") from None
