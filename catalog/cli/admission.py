"""``xregistry admission review FILE.json``: an AdmissionReview through the webhook's own code,
on the local catalog, without a cluster or a server — for debugging policies against real
objects and for CI of policies."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import IO, Any

import click

from catalog.cli.errors import EXIT_USAGE, reports_errors_as
from catalog.cli.output import echo_json
from catalog.errors import InvalidArgument

EXIT_DENIED = 1  # as `verify`


def _labels(values: tuple[str, ...]) -> dict[str, str] | None:
    labels: dict[str, str] = {}
    for value in values:
        key, equals, label = value.partition("=")
        if not equals or not key:
            raise InvalidArgument(f"--namespace-label {value!r}: expected KEY=VALUE")
        labels[key] = label
    return labels or None


@click.group("admission")
def admission_group() -> None:
    """The Kubernetes admission webhook, offline (docs/kubernetes.md)."""


@admission_group.command("review")
@click.argument("file", type=click.File("rb"))
@click.option("--mutate", is_flag=True, help="Answer as /admission/mutate (the pinning patch).")
@click.option(
    "--policy",
    "policy_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A policy (set) YAML file to judge with, not stored (nothing is logged).",
)
@click.option(
    "--policy-name", default=None, help="A stored policy set [default: admission.policy]."
)
@click.option("--offline", is_flag=True, help="Never contact a registry.")
@click.option(
    "--timeout",
    type=click.FloatRange(0.1, 30),
    default=10.0,
    show_default=True,
    help="Seconds, as the API server's ?timeout=.",
)
@click.option(
    "--namespace-label",
    "namespace_labels",
    multiple=True,
    metavar="KEY=VALUE",
    help="The namespace's labels, for policies selecting by label (default: unknown, so "
    "label selectors match).",
)
@click.option("--staging", is_flag=True, help="Verify against Sigstore's staging instance too.")
@reports_errors_as(EXIT_USAGE)
def review(
    file: IO[bytes],
    mutate: bool,
    policy_file: Path | None,
    policy_name: str | None,
    offline: bool,
    timeout: float,
    namespace_labels: tuple[str, ...],
    staging: bool,
) -> None:
    """Answer the AdmissionReview in FILE ('-': stdin) as the webhook would, printing the
    AdmissionReview response. Exit 0 allowed, 1 denied, 2 not a review or bad input (other
    codes as every command). `--config` supplies the `admission` section (policy, failure
    mode, exemptions); the catalog is the local database (--server is refused).

    \b
    Examples:
      xregistry admission review pod-review.json
      kubectl create deploy web --image=registry.acme.io/shop/web:1.4 --dry-run=server -o json \\
        | jq '{apiVersion:"admission.k8s.io/v1",kind:"AdmissionReview",request:{uid:"1",
        kind:{group:"apps",version:"v1",kind:"Deployment"},operation:"CREATE",namespace:"shop",
        object:.}}' | xregistry admission review -
    """
    # Imported here: the command line starts without the gate's imports.
    from catalog.admission import Admission, KnownLabels
    from catalog.app.admission_config import AdmissionSettings
    from catalog.app.config import load_config
    from catalog.cli.context import config_path, server_address
    from catalog.cli.gate_backend import local_gate
    from catalog.trust.policy.source import read_source

    ctx = click.get_current_context()
    if server_address(ctx):
        raise InvalidArgument(
            "admission review judges on the local catalog; the server's webhook is "
            "POST /admission/validate on its admission listener"
        )
    path = config_path()
    settings = load_config(Path(path)).admission if path else AdmissionSettings()
    if policy_name is not None:
        settings = settings.model_copy(update={"policy": policy_name})
    body = file.read(settings.max_body_bytes + 1)
    if len(body) > settings.max_body_bytes:
        raise InvalidArgument(f"the review is larger than {settings.max_body_bytes} bytes")
    gate = local_gate(staging, ctx).gate()
    adhoc = gate.adhoc(read_source(policy_file), str(policy_file)) if policy_file else None
    admission = Admission(
        gate, settings, KnownLabels(_labels(namespace_labels)), adhoc=adhoc, offline=offline
    )

    async def run() -> dict[str, Any]:
        return await admission.review(body, budget=timeout, mutate=mutate)

    answer = asyncio.run(run())
    echo_json(answer)
    sys.exit(0 if answer["response"]["allowed"] else EXIT_DENIED)
