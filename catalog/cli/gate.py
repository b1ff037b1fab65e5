"""``xregistry verify`` and ``xregistry policy apply|list|test``: the deploy gate from a shell."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from catalog.cli.errors import EXIT_USAGE, reports_errors, reports_errors_as
from catalog.cli.gate_backend import PolicySource, open_gate
from catalog.cli.output import echo_json, output_option, record, table, when_text
from catalog.store.views import DEFAULT_POLICY

if TYPE_CHECKING:
    from catalog.gate.result import CheckResult
    from catalog.store.views import PolicyView

EXIT_DENIED = 1


def _trust_option(func: Any) -> Any:
    return click.option(
        "--staging",
        is_flag=True,
        help="Verify keyless signatures against Sigstore's staging instance too "
        "(local only: a server verifies with its own trust settings).",
    )(func)


def _source(file: Path) -> PolicySource:
    from catalog.trust.policy.source import read_source

    return PolicySource(read_source(file), str(file))


def _result_json(result: CheckResult) -> dict[str, Any]:
    """The decision's fields, with the image, trust version and cache flag beside them."""
    return record(
        result.decision,
        image=result.reference,
        trust_version=result.trust_version,
        cached=result.cached,
    )


def _policy_json(view: PolicyView) -> dict[str, Any]:
    """A policy set without its source text (`policy list` is a summary)."""
    return {
        "name": view.name,
        "version": view.version,
        "digest": view.digest,
        "created_at": view.created_at,
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
@reports_errors_as(EXIT_USAGE)
def verify_command(
    image: str,
    policy_file: Path | None,
    policy_name: str,
    live: bool,
    offline: bool,
    staging: bool,
    output: str,
) -> None:
    """May IMAGE run? Exit 0 allowed, 1 denied; any other code is an error (2 bad input,
    3 not found, 7 server unreachable…, as every command).

    A tag is resolved through the catalog (or the registry with --live); a digest is judged as
    it is. Signatures and attestations the catalog lacks are fetched from the registry first,
    unless --offline. With --server, the server decides with its stored policy sets.

    \b
    Examples:
      xregistry verify registry.acme.io/shop/api:1.4 --policy prod.yaml
      xregistry verify registry.acme.io/shop/api@sha256:… --output json
    """
    adhoc = _source(policy_file) if policy_file else None
    gate = open_gate(staging)
    result = gate.check(image, policy_name, live=live, offline=offline, adhoc=adhoc)
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
    from catalog.trust.policy.loading import load_policy_set
    from catalog.trust.policy.source import read_source

    # Checked here first, so that a mistake cites FILE and its line in either mode (the store,
    # or a server, only knows the text); the PKI root names are then checked where they are.
    text = read_source(file)
    load_policy_set(text, source=str(file))
    view, created = open_gate().apply_policy(name, text)
    if output == "json":
        echo_json({**_policy_json(view), "created": created})
    else:
        state = "stored as" if created else "unchanged at"
        click.echo(f"policy {view.name} {state} version {view.version} ({view.digest})")


@policy_group.command("list")
@output_option
@reports_errors
def list_(output: str) -> None:
    """The policy sets in force, newest version of each."""
    views = open_gate().list_policies()
    if output == "json":
        echo_json([_policy_json(p) for p in views])
        return
    table(
        None,
        ["name", "version", "digest", "applied"],
        [(p.name, p.version, p.digest, when_text(p.created_at)) for p in views],
    )


@policy_group.command("test")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_trust_option
@output_option
@reports_errors
def test(file: Path, staging: bool, output: str) -> None:
    """What FILE would decide for every tagged image in the catalog (a what-if; nothing stored)."""
    results = open_gate(staging).evaluate(_source(file))
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
