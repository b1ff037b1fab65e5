"""The gate behind a running ``xregistry serve``: the ``--server`` backend of ``xregistry
verify`` and ``xregistry policy``, through ``GateService``. Answers are turned back into the
gate's records so the commands print them as they print the database's.
"""

from __future__ import annotations

from typing import Literal, cast

from catalog.api import convert, enums, names
from catalog.api.v1 import gate_pb2 as pb
from catalog.api.v1 import gate_pb2_grpc
from catalog.cli.gate_backend import PolicySource
from catalog.cli.pages import every_page
from catalog.cli.remote import Connection
from catalog.errors import InvalidArgument
from catalog.gate.result import CheckResult
from catalog.store.views import PolicyView
from catalog.trust.policy.facts import Decision, Evidence
from catalog.trust.signatures import Method

Mode = Literal["enforce", "warn"] | None


def check_result(message: pb.Decision) -> CheckResult:
    """A ``Decision`` message as the gate's result (unset numbers and strings are None)."""
    decision = Decision(
        allowed=message.allowed,
        digest=message.digest,
        policy=message.policy or None,
        policy_version=message.policy_version or None,
        # The enum tables hold exactly the domain's literals.
        mode=cast("Mode", enums.POLICY_MODE.domain(message.mode)),
        reasons=tuple(message.reasons),
        evidence=tuple(
            Evidence(
                rule=e.rule,
                attachment_digest=e.attachment_digest,
                method=cast("Method", enums.VERIFICATION_METHOD.domain(e.method)),
                identity=e.identity or None,
                issuer=e.issuer or None,
                key_fingerprint=e.key_fingerprint or None,
                log_index=e.log_index or None,
                integrated_time=int(e.integrated_time.seconds)
                if e.HasField("integrated_time")
                else None,
            )
            for e in message.evidence
        ),
    )
    return CheckResult(decision, message.image, message.trust_version, message.cached)


def policy_view(message: pb.Policy) -> PolicyView:
    return PolicyView(
        name=names.parse_policy_name(message.name),
        version=message.version,
        digest=message.digest,
        source=message.source,
        created_at=convert.datetime_of(message.create_time),
    )


class RemoteGate:
    def __init__(self, server: str) -> None:
        self.connection = Connection(server)
        self.stub = gate_pb2_grpc.GateServiceStub(self.connection.channel)

    def check(
        self, image: str, policy: str, *, live: bool, offline: bool, adhoc: PolicySource | None
    ) -> CheckResult:
        if adhoc is not None:
            # CheckImage judges with the server's stored policy sets only: a caller allowed to
            # ask for decisions must not be able to choose the policy that makes them.
            raise InvalidArgument(
                f"--policy {adhoc.origin}: a server judges with its stored policy sets; store "
                "it with `xregistry policy apply` and give --policy-name, or try it on the "
                "whole catalog with `xregistry policy test`"
            )
        request = pb.CheckImageRequest(
            image=image, policy=names.policy_name(policy), resolve_live=live, offline=offline
        )
        return check_result(self.connection.call(self.stub.CheckImage, request).decision)

    def evaluate(self, adhoc: PolicySource) -> list[CheckResult]:
        request = pb.EvaluateCatalogRequest(source=adhoc.text)
        return [
            check_result(m.decision)
            for m in self.connection.stream(self.stub.EvaluateCatalog, request)
            if m.HasField("decision")  # else the server's heartbeat
        ]

    def apply_policy(self, name: str, source: str) -> tuple[PolicyView, bool]:
        request = pb.ApplyPolicyRequest(
            policy=pb.Policy(name=names.policy_name(name), source=source)
        )
        answer = self.connection.call(self.stub.ApplyPolicy, request)
        return policy_view(answer.policy), answer.created

    def list_policies(self) -> list[PolicyView]:
        def page(token: str) -> tuple[list[PolicyView], str]:
            request = pb.ListPoliciesRequest(page_size=1000, page_token=token)
            answer = self.connection.call(self.stub.ListPolicies, request)
            return [policy_view(p) for p in answer.policies], answer.next_page_token

        return every_page(page, "policies")
