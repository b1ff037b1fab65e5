"""``xregistry health``: ask a server's gRPC health service whether it is SERVING.

For probes (the image's ``HEALTHCHECK``, a Kubernetes ``exec`` probe) and people alike: exit 0
only when SERVING, 1 when the server answers anything else, 7 when nothing answers. The channel
is the other ``--server`` commands' (TLS, client certificates, token: catalog/cli/channel.py);
the health service itself is open to every caller.
"""

from __future__ import annotations

from typing import Any

import click

from catalog.cli.errors import reports_errors
from catalog.cli.output import echo_json, output_option

DEFAULT_SERVER = "localhost:50051"


@click.command("health")
@click.option(
    "--server",
    "server_option",
    metavar="HOST:PORT",
    help=f"The server to ask [default: the global --server, $XREGISTRY_SERVER, {DEFAULT_SERVER}].",
)
@click.option(
    "--service",
    default="",
    help='A service\'s full name (xregistry.v1.GateService) [default: "", the whole server].',
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1, max=300),
    default=5.0,
    show_default=True,
    help="Seconds to wait for the answer.",
)
@output_option
@reports_errors
def health_command(server_option: str | None, service: str, timeout: float, output: str) -> None:
    """Print SERVING or NOT_SERVING: the server's readiness (its database reachable and
    migrated, its decision log writable), or one service's.

    Exit 0 only when SERVING; 1 otherwise; 3 for a service the server does not know; 7 when the
    server cannot be reached (nothing listening, TLS refused, no answer in time).

    \b
    Examples:
      xregistry health --server localhost:50052       # the plain-text health listener
      xregistry health --service xregistry.v1.GateService -o json
    """
    root = click.get_current_context().find_root()
    server = server_option or root.params.get("server") or DEFAULT_SERVER
    status = _check(str(server), service, timeout)
    if output == "json":
        echo_json({"server": server, "service": service, "status": status})
    else:
        click.echo(status)
    if status != "SERVING":
        raise SystemExit(1)


def _check(server: str, service: str, timeout: float) -> str:
    # Imported here: `xregistry --help` and the other commands do not pay for grpc.
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from catalog import errors
    from catalog.cli.call_errors import call_error
    from catalog.cli.channel import open_channel

    with open_channel(server) as channel:
        stub: Any = health_pb2_grpc.HealthStub(channel)  # its type stubs lack the methods
        try:
            answer = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:  # the health service's: no words
                raise errors.NotFound(
                    f"the server at {server} has no service {service!r}"
                ) from None
            # This call is the probe: no answer in time is unreachable, as with other commands.
            raise call_error(server, exc, answers=False) from None
    name: str = health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)
    return name
