"""``xregistry.v1.ReplicationService``: validate, call :class:`ReplicationService`, translate.

Domain errors are mapped to status codes once, by the server's interceptor. The service's
database work runs in a thread, so a worker sharing the event loop keeps copying meanwhile.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
from google.protobuf.field_mask_pb2 import FieldMask

from catalog.api import names
from catalog.api.paging import PageTokens, page_size
from catalog.api.replication_convert import (
    listed_rule_message,
    rule_message,
    rule_spec,
    run_message,
    spec_message,
)
from catalog.api.v1 import replication_pb2 as pb
from catalog.api.v1 import replication_pb2_grpc
from catalog.errors import InvalidArgument, NotFound
from replication.service import ReplicationService
from replication.spec import RULES_PAGE_MAX, RuleSpec

Context = grpc.aio.ServicerContext[Any, Any]
# The fields of a Rule a client writes (the others are output only).
_WRITABLE = frozenset(f.name for f in pb.Rule.DESCRIPTOR.fields) - {
    "name",
    "origin",
    "create_time",
    "update_time",
    "last_run",
    "lag",
}


def _rule(request: Any) -> pb.Rule:
    if not request.HasField("rule"):
        raise InvalidArgument("rule is required")
    rule: pb.Rule = request.rule
    return rule


def _masked(mask: FieldMask, update: pb.Rule, current: RuleSpec) -> pb.Rule:
    """``current`` with the fields of ``mask`` taken from ``update`` (AIP-134)."""
    paths = list(mask.paths)
    if not paths or paths == ["*"]:
        return update
    if not mask.IsValidForDescriptor(pb.Rule.DESCRIPTOR):
        raise InvalidArgument(f"update_mask names fields a rule does not have: {paths}")
    if any(path.split(".")[0] not in _WRITABLE for path in paths):
        raise InvalidArgument(f"update_mask may name only fields a client writes: {paths}")
    merged = spec_message(current)
    mask.MergeMessage(update, merged, replace_message_field=True, replace_repeated_field=True)
    return merged


class ReplicationServicer(replication_pb2_grpc.ReplicationServiceServicer):
    def __init__(self, service: ReplicationService, tokens: PageTokens) -> None:
        self.service = service
        self.tokens = tokens

    async def CreateRule(
        self, request: pb.CreateRuleRequest, context: Context
    ) -> pb.CreateRuleResponse:
        spec = rule_spec(_rule(request), names.validate_rule_id(request.rule_id))
        view = await asyncio.to_thread(self.service.put_rule, spec, replace=False)
        return pb.CreateRuleResponse(rule=rule_message(view))

    async def UpdateRule(
        self, request: pb.UpdateRuleRequest, context: Context
    ) -> pb.UpdateRuleResponse:
        update = _rule(request)
        name = names.parse_rule_name(update.name)
        message = update
        if request.HasField("update_mask"):
            try:
                current = await asyncio.to_thread(self.service.get_rule, name)
            except NotFound:
                if not request.allow_missing:
                    raise
            else:
                message = _masked(request.update_mask, update, current.spec)
        spec = rule_spec(message)
        view = await asyncio.to_thread(self.service.put_rule, spec, create=request.allow_missing)
        return pb.UpdateRuleResponse(rule=rule_message(view))

    async def GetRule(self, request: pb.GetRuleRequest, context: Context) -> pb.GetRuleResponse:
        view = await asyncio.to_thread(self.service.get_rule, names.parse_rule_name(request.name))
        return pb.GetRuleResponse(rule=rule_message(view))

    async def ListRules(
        self, request: pb.ListRulesRequest, context: Context
    ) -> pb.ListRulesResponse:
        size = page_size(request.page_size, maximum=RULES_PAGE_MAX)
        after = self.tokens.after(request, str)
        views = await asyncio.to_thread(
            self.service.list_rules, after[0] if after else None, size + 1
        )
        page = views[:size]
        next_token = self.tokens.next(request, (page[-1].name,) if len(views) > size else None)
        return pb.ListRulesResponse(
            rules=[listed_rule_message(v) for v in page], next_page_token=next_token
        )

    async def DeleteRule(
        self, request: pb.DeleteRuleRequest, context: Context
    ) -> pb.DeleteRuleResponse:
        await asyncio.to_thread(self.service.delete_rule, names.parse_rule_name(request.name))
        return pb.DeleteRuleResponse()

    async def RunRule(self, request: pb.RunRuleRequest, context: Context) -> pb.RunRuleResponse:
        view = await asyncio.to_thread(self.service.start_run, names.parse_rule_name(request.name))
        return pb.RunRuleResponse(run=run_message(view))

    async def ListRuns(self, request: pb.ListRunsRequest, context: Context) -> pb.ListRunsResponse:
        rule = names.parse_runs_parent(request.parent)
        after = self.tokens.after(request, int)
        page = await asyncio.to_thread(self.service.list_runs, rule, request.page_size, after)
        return pb.ListRunsResponse(
            runs=[run_message(v) for v in page.items],
            next_page_token=self.tokens.next(request, page.next_after),
        )

    async def GetRun(self, request: pb.GetRunRequest, context: Context) -> pb.GetRunResponse:
        rule, run = names.parse_run_name(request.name)
        view = await asyncio.to_thread(self.service.get_run, run, rule)
        return pb.GetRunResponse(run=run_message(view))

    async def WatchRun(
        self, request: pb.WatchRunRequest, context: Context
    ) -> AsyncIterator[pb.WatchRunResponse]:
        rule, run = names.parse_run_name(request.name)
        await asyncio.to_thread(self.service.get_run, run, rule)  # NOT_FOUND before streaming
        async for view in self.service.watch_run(run):
            yield pb.WatchRunResponse(run=run_message(view))
