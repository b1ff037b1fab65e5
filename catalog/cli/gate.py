"""``xregistry verify`` and ``xregistry policy apply|list|test``: the deploy gate from a shell."""

from __future__ import annotations

import asyncio
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from catalog import errors as domain
from catalog.app.config import TrustSettings
from catalog.cli.context import database_url, open_service
from catalog.cli.errors import reports_errors
from catalog.cli.output import echo_json, output_option, table
from catalog.gate import build_gate
from catalog.gate.checker import DEFAULT_POLICY, CheckResult, Gate
from catalog.oci import errors as oci
from catalog.trust.policy.stored import Policies

EXIT_DENIED = 1
EXIT_ERROR = 2


def _trust_option(func: Any) -> Any:
    return click.option(
        "--staging",
        is_flag=True,
        help="Verify keyless signatures against Sigstore's staging instance too.",
    )(func)


def _gate(staging: bool) -> tuple[Gate, Policies]:
    ctx = click.get_current_context()
    catalog = open_service(database_url(ctx))
    instances: tuple[Any, ...] = ("production", "staging") if staging else ("production",)
    gate = build_gate(catalog.sessions, TrustSettings(sigstore=instances).build(), catalog.secrets)
    return gate, Policies(catalog.sessions, gate.pki_names)


def _policies() -> Policies:
    """Policies need no gate: the command line configures no PKI roots to check them against."""
    ctx = click.get_current_context()
    return Policies(open_service(database_url(ctx)).sessions, set())


def _result_json(result: CheckResult) -> dict[str, Any]:
    d = result.decision
    return {
        "allowed": d.allowed,
        "digest": d.digest,
        "image": result.reference,
        "policy": d.policy,
        "policyVersion": d.policy_version,
        "mode": d.mode,
        "reasons": list(d.reasons),
        "evidence": [asdict(e) for e in d.evidence],
        "trustVersion": result.trust_version,
        "cached": result.cached,
    }


def _print(result: CheckResult) -> None:
    d = result.decision
    verdict = "ALLOWED" if d.allowed else "DENIED"
    click.echo(f"{verdict}: {result.reference} ({d.digest}) by policy {d.policy or '(none)'}")
    for reason in d.reasons:
        click.echo(f"  - {reason}")
    if d.evidence:
        table(
            "evidence",
            ["rule", "method", "identity / key", "issuer", "tlog index"],
            [
                (e.rule, e.method, e.identity or e.key_fingerprint, e.issuer, e.log_index)
                for e in d.evidence
            ],
        )


@click.command("verify")
@click.argument("image")
@click.option(
    "--policy",
    "policy_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A policy (set) YAML file to judge with, not stored (see docs/policy.md).",
)
@click.option(
    "--policy-name", default=DEFAULT_POLICY, show_default=True, help="A stored policy set."
)
@click.option("--live", is_flag=True, help="Resolve a tag from the registry, not the catalog.")
@click.option("--offline", is_flag=True, help="Never contact a registry.")
@_trust_option
@output_option
def verify_command(
    image: str,
    policy_file: Path | None,
    policy_name: str,
    live: bool,
    offline: bool,
    staging: bool,
    output: str,
) -> None:
    """May IMAGE run? Exit 0 allowed, 1 denied, 2 error.

    A tag is resolved through the catalog (or the registry with --live); a digest is judged as
    it is. Signatures and attestations the catalog lacks are fetched from the registry first,
    unless --offline.

    \b
    Examples:
      xregistry verify registry.acme.io/shop/api:1.4 --policy prod.yaml
      xregistry verify registry.acme.io/shop/api@sha256:… --output json
    """
    try:
        gate, _ = _gate(staging)
        adhoc = gate.adhoc(policy_file.read_text(), str(policy_file)) if policy_file else None
        result = asyncio.run(
            gate.check(image, policy_name, resolve_live=live, offline=offline, adhoc=adhoc)
        )
    except (domain.CatalogError, oci.OCIError) as exc:
        click.echo(f"xregistry: error: {exc}", err=True)
        sys.exit(EXIT_ERROR)
    if output == "json":
        echo_json(_result_json(result))
    else:
        _print(result)
    sys.exit(0 if result.decision.allowed else EXIT_DENIED)


@click.group("policy")
def policy_group() -> None:
    """Policy sets the gate decides with (format: docs/policy.md)."""


@policy_group.command("apply")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", default=DEFAULT_POLICY, show_default=True, help="Store it under this name.")
@output_option
@reports_errors
def apply(file: Path, name: str, output: str) -> None:
    """Validate FILE and store it as the newest version of policy set NAME."""
    policies = _policies()
    view, created = policies.apply(name, file.read_text())
    if output == "json":
        echo_json({**asdict(view), "created": created})
    else:
        state = "stored as" if created else "unchanged at"
        click.echo(f"policy {view.name} {state} version {view.version} ({view.digest})")


@policy_group.command("list")
@output_option
@reports_errors
def list_(output: str) -> None:
    """The policy sets in force, newest version of each."""
    policies = _policies()
    views = policies.list()
    if output == "json":
        echo_json([{k: v for k, v in asdict(p).items() if k != "source"} for p in views])
        return
    table(
        None,
        ["name", "version", "digest", "applied"],
        [(p.name, p.version, p.digest, p.created_at) for p in views],
    )


@policy_group.command("test")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_trust_option
@output_option
@reports_errors
def test(file: Path, staging: bool, output: str) -> None:
    """What FILE would decide for every tagged image in the catalog (a what-if; nothing stored)."""
    gate, _ = _gate(staging)
    results = gate.evaluate_catalog(gate.adhoc(file.read_text(), str(file)))
    if output == "json":
        echo_json([_result_json(r) for r in results])
        return
    table(
        None,
        ["image", "decision", "reasons"],
        [
            (r.reference, "allow" if r.decision.allowed else "deny", "; ".join(r.decision.reasons))
            for r in results
        ],
    )
