"""``xregistry.v1.ReplicationService``: validate, call :class:`ReplicationService`, translate.

Domain errors are mapped to status codes once, by the server's interceptor. The service's
database work runs in a thread, so a worker sharing the event loop keeps copying meanwhile.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc

from catalog.api.paging import PageTokens, page_size
from catalog.api.replication_convert import rule_message, rule_spec, run_message
from catalog.api.v1 import replication_pb2 as pb
from catalog.api.v1 import replication_pb2_grpc
from catalog.errors import InvalidArgument
from replication.service import ReplicationService

Context = grpc.aio.ServicerContext[Any, Any]


def _required(value: str, field: str) -> str:
    if not value:
        raise InvalidArgument(f"{field} is required")
    return value


def _run_id(value: int) -> int:
    if value <= 0:
        raise InvalidArgument(f"id must be a positive run id (got {value})")
    return value


class ReplicationServicer(replication_pb2_grpc.ReplicationServiceServicer):
    def __init__(self, service: ReplicationService, tokens: PageTokens) -> None:
        self.service = service
        self.tokens = tokens

    async def PutRule(self, request: pb.PutRuleRequest, context: Context) -> pb.PutRuleResponse:
        if not request.HasField("rule"):
            raise InvalidArgument("rule is required")
        spec = rule_spec(request.rule)
        view = await asyncio.to_thread(
            self.service.put_rule, spec, replace=request.replace, origin="api"
        )
        return pb.PutRuleResponse(rule=rule_message(view))

    async def GetRule(self, request: pb.GetRuleRequest, context: Context) -> pb.GetRuleResponse:
        view = await asyncio.to_thread(self.service.get_rule, _required(request.name, "name"))
        return pb.GetRuleResponse(rule=rule_message(view))

    async def ListRules(
        self, request: pb.ListRulesRequest, context: Context
    ) -> pb.ListRulesResponse:
        size = page_size(request.page_size)
        after = self.tokens.after(request, str)
        views = await asyncio.to_thread(
            self.service.list_rules, after[0] if after else None, size + 1
        )
        page = views[:size]
        next_token = self.tokens.next(request, (page[-1].spec.name,) if len(views) > size else None)
        return pb.ListRulesResponse(
            rules=[rule_message(v) for v in page], next_page_token=next_token
        )

    async def DeleteRule(
        self, request: pb.DeleteRuleRequest, context: Context
    ) -> pb.DeleteRuleResponse:
        await asyncio.to_thread(self.service.delete_rule, _required(request.name, "name"))
        return pb.DeleteRuleResponse()

    async def TriggerRun(
        self, request: pb.TriggerRunRequest, context: Context
    ) -> pb.TriggerRunResponse:
        view = await asyncio.to_thread(self.service.start_run, _required(request.rule, "rule"))
        return pb.TriggerRunResponse(run=run_message(view))

    async def ListRuns(self, request: pb.ListRunsRequest, context: Context) -> pb.ListRunsResponse:
        size = page_size(request.page_size)
        after = self.tokens.after(request, int)
        page = await asyncio.to_thread(self.service.list_runs, request.rule or None, size, after)
        return pb.ListRunsResponse(
            runs=[run_message(v) for v in page.items],
            next_page_token=self.tokens.next(request, page.next_after),
        )

    async def GetRun(self, request: pb.GetRunRequest, context: Context) -> pb.GetRunResponse:
        view = await asyncio.to_thread(self.service.get_run, _run_id(request.id))
        return pb.GetRunResponse(run=run_message(view))

    async def WatchRun(
        self, request: pb.WatchRunRequest, context: Context
    ) -> AsyncIterator[pb.WatchRunResponse]:
        async for view in self.service.watch_run(_run_id(request.id)):
            yield pb.WatchRunResponse(run=run_message(view))
