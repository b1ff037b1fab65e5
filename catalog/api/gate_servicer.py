"""``xregistry.v1.GateService``: validate, call the gate, translate."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import grpc

from catalog.api import convert, enums, names
from catalog.api.paging import PageTokens, page_size
from catalog.api.v1 import gate_pb2 as pb
from catalog.api.v1 import gate_pb2_grpc
from catalog.api.walk_turns import WalkTurns
from catalog.errors import InvalidArgument
from catalog.gate.checker import DEFAULT_POLICY, CheckResult, Gate, LoadedPolicy
from catalog.heartbeats import HEARTBEAT
from catalog.principals import current
from catalog.trust.policy.facts import Decision
from catalog.trust.policy.stored import POLICIES_PAGE_MAX, Policies, PolicyView

Context = grpc.aio.ServicerContext[Any, Any]
log = logging.getLogger(__name__)
# Evaluations walking the catalog at once, server-wide, one per caller (see walk_turns). The
# others wait their turn (their calls open, heartbeats sent as during a walk).
WALKS_AT_ONCE = 2


def _report_failure(walk: asyncio.Future[list[CheckResult]]) -> None:
    if not walk.cancelled() and walk.exception() is not None:
        log.error("an evaluation whose caller had left failed", exc_info=walk.exception())


def decision_message(result: CheckResult) -> pb.Decision:
    """The message for a result; the per-decision part is built once per decision."""
    template = _TEMPLATES.get(result.decision)
    if template is None:
        template = _decision_template(result)
        if len(_TEMPLATES) >= _TEMPLATE_CACHE:
            _TEMPLATES.pop(next(iter(_TEMPLATES)))
        _TEMPLATES[result.decision] = template
    message = pb.Decision()
    message.CopyFrom(template)
    message.image = result.reference
    message.trust_version = result.trust_version
    message.cached = result.cached
    # Not GetCurrentTime(): it goes through a datetime, a tenth of the whole call.
    seconds, nanos = divmod(time.time_ns(), 1_000_000_000)
    message.decide_time.seconds = seconds
    message.decide_time.nanos = nanos
    return message


# Decisions are frozen and shared by the gate's cache: their messages can be shared too.
_TEMPLATE_CACHE = 10_000
_TEMPLATES: dict[Decision, pb.Decision] = {}


def _decision_template(result: CheckResult) -> pb.Decision:
    d: Decision = result.decision
    return pb.Decision(
        allowed=d.allowed,
        digest=d.digest,
        policy=d.policy or "",
        policy_version=d.policy_version or 0,
        mode=enums.POLICY_MODE.proto(d.mode),
        reasons=d.reasons,
        evidence=[
            pb.Evidence(
                rule=e.rule,
                attachment_digest=e.attachment_digest,
                method=enums.VERIFICATION_METHOD.proto(e.method),
                identity=e.identity or "",
                issuer=e.issuer or "",
                key_fingerprint=e.key_fingerprint or "",
                log_index=e.log_index or 0,
                integrated_time=convert.timestamp(
                    datetime.fromtimestamp(e.integrated_time, UTC)
                    if e.integrated_time is not None
                    else None
                ),
            )
            for e in d.evidence
        ],
    )


def policy_message(view: PolicyView) -> pb.Policy:
    return pb.Policy(
        name=names.policy_name(view.name),
        version=view.version,
        digest=view.digest,
        source=view.source,
        create_time=convert.timestamp(view.created_at),
    )


def _policy(name: str) -> str:
    """A request's policy set (`policies/{policy}`), the default one when empty."""
    return names.parse_policy_name(name) if name else DEFAULT_POLICY


class GateServicer(gate_pb2_grpc.GateServiceServicer):
    def __init__(self, gate: Gate, policies: Policies, tokens: PageTokens) -> None:
        self.gate = gate
        self.policies = policies
        self._walks = WalkTurns(WALKS_AT_ONCE)
        self.tokens = tokens

    async def CheckImage(
        self, request: pb.CheckImageRequest, context: Context
    ) -> pb.CheckImageResponse:
        if not request.image:
            raise InvalidArgument("image is required")
        result = await self.gate.check(
            request.image,
            _policy(request.policy),
            resolve_live=request.resolve_live,
            offline=request.offline,
        )
        return pb.CheckImageResponse(decision=decision_message(result))

    async def EvaluateCatalog(
        self, request: pb.EvaluateCatalogRequest, context: Context
    ) -> AsyncIterator[pb.EvaluateCatalogResponse]:
        # Off the event loop: verifying a catalog's signatures would stall every other call.
        if request.source:
            # A caller's what-if: nothing stored for keys it brings (any caller could grow the
            # verifications table with a new key each call).
            loaded = await asyncio.to_thread(
                self.gate.adhoc, request.source, "<request>", keep=False
            )
        else:
            loaded = await asyncio.to_thread(self.gate.stored, _policy(request.policy))
        stop = threading.Event()
        judging = asyncio.ensure_future(self._walk(loaded, stop))
        try:
            while not (await asyncio.wait([judging], timeout=HEARTBEAT))[0]:
                yield pb.EvaluateCatalogResponse()  # no decision: still judging (client deadlines)
        finally:
            # The call ended before the judging (the client cancelled or left, its deadline
            # passed: gRPC cancels this task): the thread stops at its next image and closes its
            # transaction rather than judge a whole catalog for no one.
            stop.set()
            if not judging.done():  # no one will read its outcome: a failure is logged
                judging.add_done_callback(_report_failure)
        for result in judging.result():
            yield pb.EvaluateCatalogResponse(decision=decision_message(result))

    async def _walk(self, loaded: LoadedPolicy, stop: threading.Event) -> list[CheckResult]:
        """The catalog judged on a thread, once its caller's turn and one of the server's are
        free. Not cancelled with its call (``stop`` ends it at its next image): its turns are
        given back only when its thread is done, so no more than ``WALKS_AT_ONCE`` threads
        ever walk."""
        async with self._walks.held(current()):
            if stop.is_set():
                return []  # its caller left while it waited
            return await asyncio.to_thread(self.gate.evaluate_catalog, loaded, stop=stop)

    async def ApplyPolicy(
        self, request: pb.ApplyPolicyRequest, context: Context
    ) -> pb.ApplyPolicyResponse:
        policy = request.policy
        name = names.parse_policy_name(policy.name)
        view, created = await asyncio.to_thread(self.policies.apply, name, policy.source)
        return pb.ApplyPolicyResponse(policy=policy_message(view), created=created)

    async def ListPolicies(
        self, request: pb.ListPoliciesRequest, context: Context
    ) -> pb.ListPoliciesResponse:
        size = page_size(request.page_size, default=POLICIES_PAGE_MAX, maximum=POLICIES_PAGE_MAX)
        after = self.tokens.after(request, str)
        views = await asyncio.to_thread(self.policies.list, after[0] if after else None, size + 1)
        page = views[:size]
        next_token = self.tokens.next(request, (page[-1].name,) if len(views) > size else None)
        return pb.ListPoliciesResponse(
            policies=[policy_message(v) for v in page], next_page_token=next_token
        )
