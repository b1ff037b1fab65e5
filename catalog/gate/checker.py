"""The deploy gate: may this image run under this policy set? With evidence, logged, cached.

Signatures are verified once per (signature, subject, trust configuration) and the result is
stored; a decision is cached per (digest, policy version, trust version, attachments) so a new
signature, a new policy version or a new trust configuration each lead to a fresh decision.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import TypeVar

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from catalog import metrics
from catalog.errors import DeadlineExceeded, NotFound
from catalog.gate import stored_results
from catalog.gate.decision_log import Asked, DecisionLog
from catalog.gate.result import CheckResult as CheckResult
from catalog.index.live import index_live, resolve_live
from catalog.oci.errors import OCIError
from catalog.oci.options import RegistryOptions
from catalog.oci.reference import ImageReference, parse_image_reference
from catalog.oci.secrets import Secrets
from catalog.store import queries, verifications
from catalog.store.policies import current_policy, current_policy_version
from catalog.store.views import DEFAULT_POLICY as DEFAULT_POLICY
from catalog.trust.policy.evaluation import evaluate
from catalog.trust.policy.facts import AttestationFacts, Decision, ImageFacts, Namespace
from catalog.trust.policy.image_globs import reference_candidates
from catalog.trust.policy.loading import PolicySet, load_policy_set
from catalog.trust.roots import TrustConfig, public_key
from catalog.trust.signatures import VerifiedSignature
from catalog.trust.verify import verify_layer

T = TypeVar("T")
# What the warm path reads of an image: its digest (None: the catalog has no such tag), the
# policy set to judge with, and the attachments marker (count, newest id).
State = tuple[str | None, "LoadedPolicy", tuple[int, int]]
# Asked when the catalog lacks something: resolve a tag, or fetch a digest's attachments.
LiveResolve = Callable[[ImageReference], Awaitable[str]]
LiveIndex = Callable[[ImageReference, str], Awaitable[int]]


def with_policy_keys(base: TrustConfig, policies: PolicySet) -> TrustConfig:
    """``base`` plus the public keys policies give inline: a key authority must verify too."""
    known = {key.fingerprint for key in base.keys}
    extra = {}
    for policy in policies.policies:
        for authority in policy.authorities:
            fp = authority.fingerprint
            if authority.pem is not None and fp is not None and fp not in known:
                extra[fp] = public_key(f"policy-{fp[:16]}", authority.pem.encode())
    if not extra:
        return base
    return TrustConfig(sigstore=base.sigstore, keys=(*base.keys, *extra.values()), pki=base.pki)


@dataclass(frozen=True, slots=True)
class LoadedPolicy:
    """A policy set ready to judge with: its version (0 when ad hoc) and the trust configuration
    it verifies under (the base one plus the keys the policies give inline)."""

    version: int
    policies: PolicySet
    trust: TrustConfig


class Gate:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        trust: TrustConfig,
        *,
        resolve_live: LiveResolve | None = None,
        index_live: LiveIndex | None = None,
        cache_size: int = 10_000,
        audit: DecisionLog | None = None,
    ) -> None:
        self.sessions = sessions
        self.trust = trust
        self.resolve_live = resolve_live
        self.index_live = index_live
        self._cache: OrderedDict[tuple[object, ...], Decision] = OrderedDict()
        self._cache_size = cache_size
        self._policies: dict[tuple[str, int], LoadedPolicy] = {}
        self._lock = threading.Lock()
        self.audit = audit or DecisionLog(sessions)
        self._engine: Engine = sessions.kw["bind"]

    # -- policies --------------------------------------------------------------------------

    def _policy(self, session: Session, name: str, version: int | None = None) -> LoadedPolicy:
        if version is None:
            version = current_policy_version(session, name)
        loaded = self._policies.get((name, version))
        if loaded is None:
            row = current_policy(session, name)
            policies = load_policy_set(row.source, source=f"policy {name} v{row.version}")
            loaded = LoadedPolicy(row.version, policies, with_policy_keys(self.trust, policies))
            self._policies[(row.name, row.version)] = loaded
        return loaded

    def stored(self, name: str) -> LoadedPolicy:
        with self.sessions() as session:
            return self._policy(session, name)

    def adhoc(self, source: str, origin: str = "<policy>") -> LoadedPolicy:
        """A policy set that is not stored (``xregistry verify --policy FILE``, what-ifs)."""
        policies = load_policy_set(source, source=origin, pki_roots=self.pki_names)
        return LoadedPolicy(0, policies, with_policy_keys(self.trust, policies))

    @property
    def pki_names(self) -> set[str]:
        return {root.id.removeprefix("pki:") for root in self.trust.pki}

    # -- facts -----------------------------------------------------------------------------

    def facts(
        self, session: Session, digest: str, reference: str | None, trust: TrustConfig
    ) -> ImageFacts:
        """What the catalog knows of ``digest``, each signature verified under ``trust``."""
        signatures: list[VerifiedSignature] = []
        attestations: list[AttestationFacts] = []
        found = verifications.signatures_of(session, digest)
        signed = [signature for signature, _, _ in found]
        stored = stored_results.stored_verifications(session, signed, digest, trust.version)
        for signature, attestation, provenance in found:
            result = stored.get(signature.id)
            if result is None:
                result = verify_layer(
                    signature.layer_media_type,
                    signature.layer,
                    signature.annotations,
                    digest,
                    trust,
                    attachment_digest=signature.attachment_digest,
                    layer_digest=signature.layer_digest,
                )
                stored_results.save_verification(session, signature, digest, result)
                metrics.verified(result.method, result.verified)
            if attestation is None:
                signatures.append(result)
                continue
            attestations.append(
                AttestationFacts(
                    result,
                    attestation.predicate_type,
                    queries.provenance_view(provenance),
                )
            )
        return ImageFacts(
            digest=digest,
            reference=reference,
            signatures=tuple(signatures),
            attestations=tuple(attestations),
            sbom_count=verifications.sbom_count(session, digest),
        )

    # -- decisions -------------------------------------------------------------------------

    async def _digest(
        self, reference: ImageReference, live: bool, offline: bool, deadline: float | None
    ) -> str:
        """The digest of a tag the catalog did not resolve (or was told not to): live, when
        that is allowed and configured."""
        if not live and (offline or self.resolve_live is None):
            raise NotFound(f"the catalog has no tag {reference}")
        if self.resolve_live is None:
            raise NotFound(f"{reference}: resolving tags live is not configured")
        return await _within(deadline, self.resolve_live(reference), f"resolving {reference}")

    async def check(
        self,
        image: str,
        policy: str = DEFAULT_POLICY,
        *,
        resolve_live: bool = False,
        offline: bool = False,
        adhoc: LoadedPolicy | None = None,
        namespace: Namespace | None = None,
        deadline: float | None = None,
        asked: Asked | None = None,
        state: State | None = None,
    ) -> CheckResult:
        """The decision on ``image``. ``namespace`` chooses the policies that select it (None:
        all). With a ``deadline`` (the event loop's clock) the catalog comes first, as in
        admission: a cached decision, or a policy that needs no evidence, is answered without
        asking a registry, and live work stops at the deadline (:class:`DeadlineExceeded`).
        ``asked`` is recorded with the decision; ``state`` is what :meth:`states` read for it
        (several images in one read)."""
        # Every read of the store, every verification and the evaluation run on worker threads:
        # on the event loop they would hold up every other call the server is answering.
        started = time.monotonic()
        reference = parse_image_reference(image, "latest")
        live = resolve_live and not offline
        if state is None:
            [state] = await asyncio.to_thread(self._states, [reference], policy, live, adhoc)
        digest, loaded, marker = state
        # A policy needing no evidence is judged without asking a registry anything.
        needs_evidence = loaded.policies.needs_evidence(
            reference_candidates(str(reference), ""), namespace
        )
        if digest is None and deadline is not None and not needs_evidence:
            digest, marker = "", (0, 0)  # decided on the name alone: nothing to pin
        if digest is None:
            digest = await self._digest(reference, live, offline, deadline)
            marker = await asyncio.to_thread(self._marker, digest)
        name = policy if adhoc is None else None
        selection = loaded.policies.selection(namespace)
        # By name, tag and digest: ``api:1.4`` and ``api:1.4@sha256:…`` (its pinned spelling, as
        # admission writes it into a template's Pods) offer the policies the same strings.
        key = (
            digest,
            reference.name,
            reference.tag,
            name,
            loaded.version,
            loaded.trust.version,
            selection,
        )
        cached = self._cached((*key, marker)) if adhoc is None else None
        catalog_first = deadline is not None and cached is not None
        fetch = marker[0] == 0 and needs_evidence and not offline and not catalog_first
        if fetch and self.index_live is not None:
            # Failing that, decide on what the catalog holds: the reasons say what is missing.
            with contextlib.suppress(OCIError):
                await _within(deadline, self.index_live(reference, digest), f"fetching {reference}")
            marker = await asyncio.to_thread(self._marker, digest)
            cached = self._cached((*key, marker)) if adhoc is None else None
        if cached is None:
            decision = await asyncio.to_thread(
                self._decide, digest, str(reference), loaded, namespace
            )
        else:
            decision = cached
        answer = decision
        if adhoc is None and not self.audit.add(
            str(reference), decision, loaded.trust.version, cached is not None, asked
        ):
            answer = self.audit.refusal(decision)  # fail closed: never an unrecorded decision
        if cached is None and adhoc is None:
            with self._lock:
                self._cache[(*key, marker)] = decision
                if len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        metrics.gate_decided(name, answer.allowed, time.monotonic() - started, cached is not None)
        return CheckResult(answer, str(reference), loaded.trust.version, cached is not None)

    def _cached(self, key: tuple[object, ...]) -> Decision | None:
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
        return cached

    def states(
        self, images: Sequence[str], policy: str = DEFAULT_POLICY, adhoc: LoadedPolicy | None = None
    ) -> list[State | None]:
        """What :meth:`check` reads first, for several images in one connection (a Pod's
        containers): pass each to ``check(state=…)``. None for what is not an image reference
        (``check`` then says why)."""
        parsed: list[ImageReference | None] = []
        for image in images:
            try:
                parsed.append(parse_image_reference(image, "latest"))
            except OCIError:
                parsed.append(None)
        found = iter(self._states([r for r in parsed if r is not None], policy, False, adhoc))
        return [None if r is None else next(found) for r in parsed]

    def _states(
        self,
        references: Sequence[ImageReference],
        policy: str,
        live: bool,
        adhoc: LoadedPolicy | None,
    ) -> list[State]:
        """Each tag's digest (None when the catalog did not resolve it), the policy set to
        judge with, the attachments marker."""
        # One read for the warm path: each tag, the policy version, the attachments markers;
        # on a bare connection, as the ORM's per-statement work would cost more.
        with self._engine.connect() as connection:
            rows = verifications.gate_states(
                connection, references, None if adhoc else policy, resolve_tag=not live
            )
        states: list[State] = []
        for digest, version, marker in rows:
            loaded = adhoc or self._policies.get((policy, version or 0))
            if loaded is None:
                with self.sessions() as session:
                    loaded = self._policy(session, policy, version)
            states.append((digest, loaded, marker))
        return states

    def _marker(self, digest: str) -> tuple[int, int]:
        with self.sessions() as session:
            return verifications.attachments_marker(session, digest)

    def _decide(
        self, digest: str, reference: str, loaded: LoadedPolicy, namespace: Namespace | None
    ) -> Decision:
        """Verify what was never verified under this trust version, then evaluate."""
        with self.sessions.begin() as session:
            facts = self.facts(session, digest, reference, loaded.trust)
            return evaluate(
                loaded.policies, facts, policy_version=loaded.version or None, namespace=namespace
            )

    def evaluate_catalog(self, loaded: LoadedPolicy) -> list[CheckResult]:
        """What ``loaded`` would decide for every tagged image of the catalog (nothing logged)."""
        results = []
        known: dict[str, ImageFacts] = {}  # a digest's facts, whichever of its tags asks first
        with self.sessions.begin() as session:
            for host, repository, tag, digest in verifications.tagged_images(session):
                reference = f"{host}/{repository}:{tag}"
                if digest not in known:
                    known[digest] = self.facts(session, digest, reference, loaded.trust)
                facts = replace(known[digest], reference=reference)
                decision = evaluate(loaded.policies, facts, policy_version=loaded.version or None)
                results.append(CheckResult(decision, reference, loaded.trust.version, False))
        return results


async def _within(deadline: float | None, work: Awaitable[T], what: str) -> T:
    """``work``'s result, or :class:`DeadlineExceeded` once ``deadline`` passes."""
    if deadline is None:
        return await work
    remaining = deadline - asyncio.get_running_loop().time()
    try:
        if remaining <= 0:
            raise TimeoutError
        return await asyncio.wait_for(work, remaining)
    except TimeoutError:
        if inspect.iscoroutine(work):
            work.close()  # never started: no "never awaited" warning
        raise DeadlineExceeded(f"could not verify in time ({what})") from None


def build_gate(
    sessions: sessionmaker[Session],
    trust: TrustConfig,
    secrets: Secrets | None = None,
    *,
    limits: RegistryOptions | None = None,
    audit: DecisionLog | None = None,
) -> Gate:
    """The gate, asking registries live for what the catalog has not seen (with the named
    ``secrets`` their registries refer to, none by default, and clients under ``limits``)."""
    secrets = secrets or Secrets()
    return Gate(
        sessions,
        trust,
        resolve_live=partial(resolve_live, sessions, secrets, limits=limits),
        index_live=partial(index_live, sessions, secrets, limits=limits),
        audit=audit,
    )
