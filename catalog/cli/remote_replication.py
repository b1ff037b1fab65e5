"""Replication behind a running ``xregistry serve``: the ``--server`` backend of
``xregistry replicate rule|run|status``.

It answers with :mod:`replication.service`'s records (converted back by
:mod:`catalog.api.replication_convert`), and maps status codes to the domain errors the CLI
turns into exit codes, as :mod:`catalog.cli.remote` does for the catalog.
"""

from __future__ import annotations

from collections.abc import Callable

from catalog.api import names
from catalog.api.paging import MAX_PAGE_SIZE, page_size
from catalog.api.replication_convert import listed_rule_view, rule_view, run_view, spec_message
from catalog.api.v1 import replication_pb2 as pb
from catalog.api.v1 import replication_pb2_grpc
from catalog.cli.pages import TokensByKey, every_page
from catalog.cli.remote import Connection
from catalog.errors import FailedPrecondition
from catalog.store.queries import Key, Page
from replication.service import RefusedRule, RuleView, RunView
from replication.spec import RuleSpec
from replication.statuses import RuleOrigin


class RemoteReplication:
    executes_here = False

    def __init__(self, server: str) -> None:
        self.connection = Connection(server)
        self.stub = replication_pb2_grpc.ReplicationServiceStub(self.connection.channel)
        self._call = self.connection.call
        # The token for the page after a run, by the runs' parent (the list) and run id.
        self._run_pages = TokensByKey()

    def put_rule(
        self,
        spec: RuleSpec,
        *,
        create: bool = True,
        replace: bool = True,
        origin: RuleOrigin = RuleOrigin.API,
    ) -> RuleView:
        """CreateRule, or UpdateRule (creating when ``create``) when ``replace``; rules from here
        are the API's (``origin`` is the server's to set)."""
        rule = spec_message(spec)
        if not replace:
            create_request = pb.CreateRuleRequest(rule_id=spec.name, rule=rule)
            return rule_view(self._call(self.stub.CreateRule, create_request).rule)
        update_request = pb.UpdateRuleRequest(rule=rule, allow_missing=create)
        return rule_view(self._call(self.stub.UpdateRule, update_request).rule)

    def get_rule(self, name: str) -> RuleView:
        request = pb.GetRuleRequest(name=names.rule_name(name))
        return rule_view(self._call(self.stub.GetRule, request).rule)

    def list_rules(self) -> list[RuleView | RefusedRule]:
        def page(token: str) -> tuple[list[RuleView | RefusedRule], str]:
            request = pb.ListRulesRequest(page_size=MAX_PAGE_SIZE, page_token=token)
            answer = self._call(self.stub.ListRules, request)
            return [listed_rule_view(r) for r in answer.rules], answer.next_page_token

        return every_page(page, "rules")

    def delete_rule(self, name: str) -> None:
        self._call(self.stub.DeleteRule, pb.DeleteRuleRequest(name=names.rule_name(name)))

    def start_run(self, rule: str) -> RunView:
        request = pb.RunRuleRequest(name=names.rule_name(rule))
        return run_view(self._call(self.stub.RunRule, request).run)

    def list_runs(
        self, rule: str | None = None, size: int = 0, after: Key | None = None
    ) -> Page[RunView]:
        """A page of runs, newest first, paged as on the database: ``after`` is the
        ``next_after`` (``(run id,)``) of the page before."""
        parent = names.rule_name(rule) if rule else f"rules/{names.ANY_RULE}"
        request = pb.ListRunsRequest(parent=parent, page_size=size)
        if after is not None:
            run_id = int(after[0])
            token = self._run_pages.known(parent, (run_id,))
            if token is None:  # a run id from elsewhere: found by listing from the newest
                return self._runs_before(request, run_id)
            request.page_token = token
        answer = self._call(self.stub.ListRuns, request)
        runs = [run_view(r) for r in answer.runs]
        return self._run_pages.page(parent, runs, lambda run: (run.id,), answer.next_page_token)

    def _runs_before(self, request: pb.ListRunsRequest, after: int) -> Page[RunView]:
        """The page after run ``after`` when no page here ended with it (the id came from
        elsewhere): list from the newest run on and keep the runs older than ``after``."""
        size = page_size(request.page_size)
        request.page_size = MAX_PAGE_SIZE
        found: list[RunView] = []
        while len(found) <= size:
            answer = self._call(self.stub.ListRuns, request)
            found += [v for v in map(run_view, answer.runs) if v.id < after]
            if not answer.next_page_token:
                break
            request.page_token = answer.next_page_token
        runs = found[:size]
        return Page(runs, (runs[-1].id,) if len(found) > size else None)

    def get_run(self, run_id: int, rule: str | None = None) -> RunView:
        request = pb.GetRunRequest(name=names.run_name(rule, run_id))
        return run_view(self._call(self.stub.GetRun, request).run)

    async def follow(
        self, run_id: int, on_update: Callable[[RunView], None], *, parallel: int
    ) -> RunView:
        """Watch the run the server's workers execute (``parallel`` is theirs to choose)."""
        last: RunView | None = None
        async with self.connection.following() as channel:
            stub = replication_pb2_grpc.ReplicationServiceStub(channel)
            async for message in self.connection.idle_bounded(
                stub.WatchRun(pb.WatchRunRequest(name=names.run_name(None, run_id)))
            ):
                last = run_view(message.run)
                on_update(last)
        if last is None or not last.finished:
            raise FailedPrecondition(f"the server stopped watching replication run {run_id}")
        return last
