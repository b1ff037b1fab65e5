"""Replication behind a running ``xregistry serve``: the ``--server`` backend of
``xregistry replicate rule|run|status``.

It answers with :mod:`replication.service`'s records (converted back by
:mod:`catalog.api.replication_convert`), and maps status codes to the domain errors the CLI
turns into exit codes, as :mod:`catalog.cli.remote` does for the catalog.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import grpc
import grpc.aio

from catalog.api.replication_convert import rule_view, run_view, spec_message
from catalog.api.v1 import replication_pb2 as pb
from catalog.api.v1 import replication_pb2_grpc
from catalog.cli.remote import _mapped
from catalog.errors import FailedPrecondition, InvalidArgument
from catalog.store.queries import Page
from replication.service import RuleView, RunView
from replication.spec import RuleSpec

T = TypeVar("T")
_TIMEOUT = 60.0


class RemoteReplication:
    executes_here = False

    def __init__(self, server: str) -> None:
        self.server = server
        self.channel = grpc.insecure_channel(server)
        self.stub = replication_pb2_grpc.ReplicationServiceStub(self.channel)

    def _call(self, method: Callable[..., T], request: Any) -> T:
        with _mapped(self.server):
            return method(request, timeout=_TIMEOUT)

    def put_rule(self, spec: RuleSpec, *, replace: bool = True, origin: str = "api") -> RuleView:
        request = pb.PutRuleRequest(rule=spec_message(spec), replace=replace)
        return rule_view(self._call(self.stub.PutRule, request).rule)

    def get_rule(self, name: str) -> RuleView:
        return rule_view(self._call(self.stub.GetRule, pb.GetRuleRequest(name=name)).rule)

    def list_rules(self) -> list[RuleView]:
        found: list[RuleView] = []
        request = pb.ListRulesRequest(page_size=1000)
        while True:
            answer = self._call(self.stub.ListRules, request)
            found += [rule_view(r) for r in answer.rules]
            if not answer.next_page_token:
                return found
            request.page_token = answer.next_page_token

    def delete_rule(self, name: str) -> None:
        self._call(self.stub.DeleteRule, pb.DeleteRuleRequest(name=name))

    def trigger_run(
        self, rule: str, trigger: str = "manual", scheduled_for: datetime | None = None
    ) -> RunView | None:
        if trigger != "manual" or scheduled_for is not None:
            raise InvalidArgument("a server starts only manual runs on request")
        return run_view(self._call(self.stub.TriggerRun, pb.TriggerRunRequest(rule=rule)).run)

    def list_runs(
        self, rule: str | None = None, size: int = 0, after: int | None = None
    ) -> Page[RunView]:
        # The first page only: the server's page tokens are opaque, not run ids.
        request = pb.ListRunsRequest(rule=rule or "", page_size=size)
        answer = self._call(self.stub.ListRuns, request)
        return Page([run_view(r) for r in answer.runs], None)

    def get_run(self, run_id: int) -> RunView:
        return run_view(self._call(self.stub.GetRun, pb.GetRunRequest(id=run_id)).run)

    async def follow(
        self, run_id: int, on_update: Callable[[RunView], None], *, parallel: int
    ) -> RunView:
        """Watch the run the server's workers execute (``parallel`` is theirs to choose)."""
        last: RunView | None = None
        async with grpc.aio.insecure_channel(self.server) as channel:
            stub = replication_pb2_grpc.ReplicationServiceStub(channel)
            with _mapped(self.server):
                async for message in stub.WatchRun(pb.WatchRunRequest(id=run_id)):
                    last = run_view(message.run)
                    on_update(last)
        if last is None or not last.finished:
            raise FailedPrecondition(f"the server stopped watching replication run {run_id}")
        return last
