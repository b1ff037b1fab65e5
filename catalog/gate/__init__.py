"""The deploy gate: may this image run under this policy set? Answered from the catalog's stored,
pre-verified facts (asking the registry live only for what the catalog has not seen), with the
evidence, logged, cached::

    gate = build_gate(sessions, trust)
    result = await gate.check("registry.acme.io/shop/api:1.4", policy="default")
    result.decision.allowed, result.decision.evidence
"""

from typing import TYPE_CHECKING

from catalog.lazy import lazy_exports

if TYPE_CHECKING:
    from catalog.gate.checker import DEFAULT_POLICY, Gate, LoadedPolicy, State, build_gate
    from catalog.gate.decision_log import Asked, DecisionLog
    from catalog.gate.result import CheckResult

__all__ = [
    "DEFAULT_POLICY",
    "Asked",
    "CheckResult",
    "DecisionLog",
    "Gate",
    "LoadedPolicy",
    "State",
    "build_gate",
]
__getattr__ = lazy_exports(
    __name__,
    {
        "DEFAULT_POLICY": "checker",
        "Gate": "checker",
        "LoadedPolicy": "checker",
        "State": "checker",
        "build_gate": "checker",
        "Asked": "decision_log",
        "DecisionLog": "decision_log",
        "CheckResult": "result",
    },
)
