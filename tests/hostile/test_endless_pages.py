"""A server that pages forever: each page holds only audit events of a kind this client drops
(a newer server's), each with a next-page token. ``xregistry audit --server`` reads pages until
LISTED_MAX, then stops with one line and exit 2, as ``every_page`` does for rules and policies."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest
from click.testing import CliRunner

from catalog.api.v1 import audit_pb2 as pb
from catalog.api.v1 import audit_pb2_grpc
from catalog.cli import pages
from catalog.cli.main import main

_UNKNOWN_KIND = 99  # a kind no client of this version knows: dropped, never printed
_GUARD = 10_000  # pages the peer serves at most, so that an endless client fails, not hangs


class _EndlessAudit(audit_pb2_grpc.AuditServiceServicer):
    def __init__(self) -> None:
        self.calls = 0

    def ListAuditEvents(
        self, request: pb.ListAuditEventsRequest, context: grpc.ServicerContext
    ) -> pb.ListAuditEventsResponse:
        self.calls += 1
        if self.calls > _GUARD:
            context.abort(grpc.StatusCode.INTERNAL, "the client never stopped asking")
        event = pb.AuditEvent(
            name=f"auditEvents/{1_000_000 - self.calls}",
            principal="token:ci",
            kind=_UNKNOWN_KIND,  # type: ignore[arg-type]  # a newer server's kind
            resource="widgets/w",
        )
        return pb.ListAuditEventsResponse(
            audit_events=[event], next_page_token=f"page-{self.calls}"
        )


@pytest.fixture
def endless() -> Iterator[tuple[str, _EndlessAudit]]:
    servicer = _EndlessAudit()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    audit_pb2_grpc.add_AuditServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}", servicer
    finally:
        server.stop(grace=None)


def test_audit_through_a_server_that_never_stops_paging_is_cut_off(
    endless: tuple[str, _EndlessAudit], monkeypatch: pytest.MonkeyPatch
) -> None:
    address, servicer = endless
    monkeypatch.setattr(pages, "LISTED_MAX", 50)  # 100,000 round trips would take minutes
    runner = CliRunner(env={"XREGISTRY_SERVER": None, "XREGISTRY_DATABASE": None})
    result = runner.invoke(main, ["--server", address, "audit"], prog_name="xregistry")
    assert (result.exit_code, result.stdout) == (2, ""), result.stderr
    assert result.stderr == "xregistry: error: the server lists more than 50 events\n"
    assert servicer.calls == 50
