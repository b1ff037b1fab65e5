"""Deploy-gate policies: load a YAML policy set (refused with line numbers), store it by version,
evaluate it over an image's facts. The format is ``docs/policy.md``::

    policy_set = load_policy_set(text, source="policy.yaml", pki_roots={"corp"})
    decision = evaluate(policy_set, ImageFacts(digest, reference, signatures), policy_version=3)
"""

from typing import TYPE_CHECKING

from catalog.lazy import lazy_exports

if TYPE_CHECKING:
    from catalog.trust.policy.errors import PolicyError, Problem, YamlPath
    from catalog.trust.policy.facts import (
        AttestationFacts,
        Decision,
        Evidence,
        ImageFacts,
        Namespace,
        ProvenanceFacts,
    )
    from catalog.trust.policy.loading import (
        WARNING,
        Policy,
        PolicySet,
        canonical_policy,
        evaluate,
        load_policy_file,
        load_policy_set,
        policy_digest,
    )
    from catalog.trust.policy.stored import Policies, PolicyView

__all__ = [
    "WARNING",
    "AttestationFacts",
    "Decision",
    "Evidence",
    "ImageFacts",
    "Namespace",
    "Policies",
    "Policy",
    "PolicyError",
    "PolicySet",
    "PolicyView",
    "Problem",
    "ProvenanceFacts",
    "YamlPath",
    "canonical_policy",
    "evaluate",
    "load_policy_file",
    "load_policy_set",
    "policy_digest",
]
__getattr__ = lazy_exports(
    __name__,
    {
        "PolicyError": "errors",
        "Problem": "errors",
        "YamlPath": "errors",
        "AttestationFacts": "facts",
        "Decision": "facts",
        "Evidence": "facts",
        "ImageFacts": "facts",
        "Namespace": "facts",
        "ProvenanceFacts": "facts",
        "WARNING": "loading",
        "Policy": "loading",
        "PolicySet": "loading",
        "canonical_policy": "loading",
        "evaluate": "loading",
        "load_policy_file": "loading",
        "load_policy_set": "loading",
        "policy_digest": "loading",
        "Policies": "stored",
        "PolicyView": "stored",
    },
)
