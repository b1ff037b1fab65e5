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
from functools import cache, lru_cache
from typing import TYPE_CHECKING, NamedTuple, ParamSpec, TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from catalog import metrics
from catalog.errors import DeadlineExceeded, NotFound
from catalog.gate import stored_results
from catalog.gate._live_work import LiveWork
from catalog.gate._state_cache import Key, StateCache
from catalog.gate.decision_log import Asked, DecisionLog, bound_engine
from catalog.gate.result import CheckResult as CheckResult
from catalog.oci.errors import OCIError
from catalog.oci.reference import ImageReference, parse_image_reference
from catalog.store import verifications
from catalog.store.db import lost_a_race_to_insert
from catalog.store.policies import current_policy, current_policy_version
from catalog.store.queries import Reads
from catalog.store.views import DEFAULT_POLICY as DEFAULT_POLICY
from catalog.trust.policy.compiled import pem_der
from catalog.trust.policy.evaluation import evaluate
from catalog.trust.policy.facts import AttestationFacts, Decision, ImageFacts, Namespace
from catalog.trust.policy.image_globs import reference_candidates
from catalog.trust.policy.stored import stored_set
from catalog.trust.roots import TrustConfig, known_key
from catalog.trust.signatures import VerifiedSignature

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from catalog.oci.options import RegistryOptions
    from catalog.oci.secrets import Secrets
    from catalog.trust.policy.compiled import PolicySet

T = TypeVar("T")
P = ParamSpec("P")
# What the warm path reads of an image: its digest (None: the catalog has no such tag), the
# policy set to judge with, and the attachments marker (count, newest id).
State = tuple[str | None, "LoadedPolicy", tuple[int, int]]
# How long another process's change to a tag, a policy or an image's attachments may go unseen
# by the warm path (this process's own writes are seen at once): see _state_cache.
STATE_TTL = 0.5
# Versions of one stored policy kept loaded: a check may still ask for the one before the
# newest (its state read before the newest was applied), and a read may finish late.
_POLICY_VERSIONS = 4
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
                # Checked usable when the policy was validated: loaded if a signature needs it.
                extra[fp] = known_key(f"policy-{fp[:16]}", pem_der(authority.pem))
    if not extra:
        return base
    return TrustConfig(sigstore=base.sigstore, keys=(*base.keys, *extra.values()), pki=base.pki)


class LoadedPolicy(NamedTuple):
    """A policy set ready to judge with: its version (0 when ad hoc), the trust configuration
    it verifies under (the base one plus the keys the policies give inline), and whether the
    verifications made under it are stored."""

    version: int
    policies: PolicySet
    trust: TrustConfig
    keeps_verifications: bool = True


class _Plan(NamedTuple):  # built for every image of every check: a tuple is cheapest
    """What :meth:`Gate._plan` found for one image (see there)."""

    digest: str | None  # None: the tag must be resolved live first
    marker: tuple[int, int]
    loaded: LoadedPolicy
    selection: tuple[bool, ...]
    needs_evidence: bool
    key: tuple[object, ...] | None  # the decision cache's key but for the marker, once digested
    cached: Decision | None


class Gate:
    """The gate on a database: ``sessions`` (or their engine; the gate reads and writes in Core)."""

    def __init__(
        self,
        sessions: sessionmaker[Session] | Engine,
        trust: TrustConfig,
        *,
        resolve_live: LiveResolve | None = None,
        index_live: LiveIndex | None = None,
        cache_size: int = 10_000,
        audit: DecisionLog | None = None,
        state_ttl: float = STATE_TTL,
        inline: bool = False,
        live: LiveWork | None = None,
    ) -> None:
        self.trust = trust
        self._live = live  # what resolve_live and index_live run under, closed with the gate
        # A process that asks once and has nothing else to answer (the CLI): the store's work
        # runs on the calling thread, as a worker thread would only add its start to the wait.
        self._inline = inline
        self.resolve_live = resolve_live
        self.index_live = index_live
        self._cache: OrderedDict[tuple[object, ...], Decision] = OrderedDict()
        self._cache_size = cache_size
        self._policies: dict[tuple[str, int], LoadedPolicy] = {}
        self._evidence_needs: dict[tuple[str, str, tuple[bool, ...]], bool] = {}
        self._scoped: dict[str, bool] = {}  # policy set digest → whether it selects namespaces
        self._lock = threading.Lock()
        self._engine = bound_engine(sessions)
        self.audit = audit or DecisionLog(self._engine)
        self._state_cache = StateCache(self._engine, state_ttl)

    # -- policies --------------------------------------------------------------------------

    def _policy(self, session: Reads, name: str, version: int | None = None) -> LoadedPolicy:
        if version is None:
            version = current_policy_version(session, name)
        loaded = self._policies.get((name, version))
        if loaded is None:
            row = current_policy(session, name)
            origin = f"policy {name} v{row.version}"
            policies = stored_set(row.source, row.canonical, row.digest, origin)
            loaded = LoadedPolicy(row.version, policies, with_policy_keys(self.trust, policies))
            with self._lock:  # a server's life applies many: the name's newest few are kept
                self._policies[(row.name, row.version)] = loaded
                versions = sorted(key for key in self._policies if key[0] == row.name)
                for key in versions[:-_POLICY_VERSIONS]:
                    del self._policies[key]
        return loaded

    def stored(self, name: str) -> LoadedPolicy:
        with self._engine.connect() as connection:
            return self._policy(connection, name)

    def adhoc(self, source: str, origin: str = "<policy>", *, keep: bool = True) -> LoadedPolicy:
        """A policy set that is not stored (``xregistry verify --policy FILE``, what-ifs).
        Unless ``keep``, what is verified under keys it gives inline is not stored: a caller's
        what-if with a new key each time would otherwise grow the table without end."""
        from catalog.trust.policy.loading import load_policy_set

        policies = load_policy_set(source, source=origin, pki_roots=self.pki_names)
        trust = with_policy_keys(self.trust, policies)
        return LoadedPolicy(0, policies, trust, keep or trust is self.trust)

    @property
    def pki_names(self) -> set[str]:
        return {root.id.removeprefix("pki:") for root in self.trust.pki}

    # -- facts -----------------------------------------------------------------------------

    def facts(
        self,
        session: Reads,
        digest: str,
        reference: str | None,
        trust: TrustConfig,
        keep: bool = True,
    ) -> ImageFacts:
        """What the catalog knows of ``digest``, each signature verified under ``trust`` (and
        what was verified now stored, when ``keep``)."""
        signatures: list[VerifiedSignature] = []
        attestations: list[AttestationFacts] = []
        found = verifications.signatures_of(session, digest)
        signed = [signature for signature, _, _ in found]
        stored = stored_results.stored_verifications(session, signed, digest, trust.version)
        for signature, predicate_type, provenance in found:
            result = stored.get(signature.id)
            if result is None:
                from catalog.trust.verify import verify_layer  # sigstore: for a new signature

                result = verify_layer(
                    signature.layer_media_type,
                    signature.layer,
                    signature.annotations,
                    digest,
                    trust,
                    attachment_digest=signature.attachment_digest,
                    layer_digest=signature.layer_digest,
                )
                if keep:
                    stored_results.save_verification(session, signature, digest, result)
                metrics.verified(result.method, result.verified)
            if predicate_type is None:
                signatures.append(result)
                continue
            attestations.append(AttestationFacts(result, predicate_type, provenance))
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
        # Every read of the store, every verification and the evaluation run on worker threads
        # (unless inline): on the event loop they would hold up every other call the server is
        # answering.
        started = time.monotonic()
        reference = _reference(image)
        live = resolve_live and not offline
        if state is None:
            # The read model first: a warm check then needs neither the database nor a thread.
            known = self._known([reference], policy, live, adhoc)
            if known is None:
                known = await self._off_loop(self._states, [reference], policy, live, adhoc)
            [state] = known
        plan = self._plan(reference, policy, state, adhoc, namespace, deadline)
        loaded = plan.loaded
        at_hand = self._at_hand(plan, offline, deadline)
        if at_hand is not None:
            return self._answer(reference, policy, adhoc, loaded, at_hand, None, asked, started)
        digest, marker, key, cached = plan.digest, plan.marker, plan.key, plan.cached
        if digest is None:
            digest = await self._digest(reference, live, offline, deadline)
            marker = await self._off_loop(self._marker, digest)
        if key is None:  # the plan's, unless the digest was only found now
            key = self._key(digest, reference, policy, adhoc, loaded, plan.selection)
            if adhoc is None:
                cached = self._cached((*key, marker))
        if self._fetches(marker, plan.needs_evidence, offline, deadline, cached):
            # Failing that, decide on what the catalog holds: the reasons say what is missing.
            assert self.index_live is not None
            with contextlib.suppress(OCIError):
                await _within(deadline, self.index_live(reference, digest), f"fetching {reference}")
            marker = await self._off_loop(self._marker, digest)
            cached = self._cached((*key, marker)) if adhoc is None else None
        if cached is not None:
            return self._answer(reference, policy, adhoc, loaded, cached, None, asked, started)
        decision = await self._off_loop(self._decide, digest, str(reference), loaded, namespace)
        new = (*key, marker)
        return self._answer(reference, policy, adhoc, loaded, decision, new, asked, started)

    def close(self) -> None:
        """Once no check is answered any more (a server stopping): the live look-ups' threads
        end, each after the work it holds, if any; nothing waits for them here."""
        if self._live is not None:
            self._live.close()

    async def _off_loop(self, work: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``work(*args, **kwargs)`` on a worker thread, or here when the gate is inline."""
        if self._inline:
            return work(*args, **kwargs)
        return await asyncio.to_thread(work, *args, **kwargs)

    def known_check(
        self,
        image: str,
        policy: str = DEFAULT_POLICY,
        *,
        offline: bool = False,
        adhoc: LoadedPolicy | None = None,
        namespace: Namespace | None = None,
        deadline: float | None = None,
        asked: Asked | None = None,
        state: State | None = None,
    ) -> CheckResult | None:
        """:meth:`check`'s answer when it is at hand (the state given or in the read model, the
        decision cached, nothing to fetch): no I/O, no task, callable on the event loop. None
        when ``check`` has work to do."""
        [answer] = self.known_checks(
            [image], policy, [state], offline, adhoc, namespace, deadline, asked
        )
        return answer

    def known_checks(
        self,
        images: Sequence[str],
        policy: str,
        states: Sequence[State | None],
        offline: bool,
        adhoc: LoadedPolicy | None,
        namespace: Namespace | None,
        deadline: float | None,
        asked: Asked | None,
    ) -> list[CheckResult | None]:
        """:meth:`known_check` for each image with its state (a Pod's containers), the answers
        at hand logged in one call."""
        started = time.monotonic()
        answers: list[CheckResult | None] = []
        for image, state in zip(images, states, strict=True):
            answers.append(
                self._known_answer(image, policy, state, offline, adhoc, namespace, deadline)
            )
        if adhoc is None:
            rows = [
                (a.reference, a.decision, a.trust_version, True) for a in answers if a is not None
            ]
            if rows and not self.audit.add_many(rows, asked):
                # Fail closed: never an unrecorded decision.
                answers = [
                    None if a is None else a._replace(decision=self.audit.refusal(a.decision))
                    for a in answers
                ]
        name = policy if adhoc is None else None
        answered = [a for a in answers if a is not None]
        took = (time.monotonic() - started) / max(len(answered), 1)  # each answer's share
        for answer in answered:
            metrics.gate_decided(name, answer.decision.allowed, took, True)
        return answers

    def _known_answer(
        self,
        image: str,
        policy: str,
        state: State | None,
        offline: bool,
        adhoc: LoadedPolicy | None,
        namespace: Namespace | None,
        deadline: float | None,
    ) -> CheckResult | None:
        """The cached decision on ``image`` when it is at hand, not yet logged."""
        try:
            reference = _reference(image)
        except OCIError:
            return None  # check() says why
        if state is None:
            known = self._known([reference], policy, False, adhoc)
            if known is None:
                return None
            [state] = known
        plan = self._plan(reference, policy, state, adhoc, namespace, deadline)
        at_hand = self._at_hand(plan, offline, deadline)
        if at_hand is None:
            return None
        return CheckResult(at_hand, str(reference), plan.loaded.trust.version, True)

    def _plan(
        self,
        reference: ImageReference,
        policy: str,
        state: State,
        adhoc: LoadedPolicy | None,
        namespace: Namespace | None,
        deadline: float | None,
    ) -> _Plan:
        """What judging ``reference`` takes, from its state: which policies select the
        namespace, whether they need evidence, and the cached decision when the digest is known
        (never for an ad hoc policy set)."""
        digest, loaded, marker = state
        selection = self._selection(loaded.policies, namespace)
        needs_evidence = self._needs_evidence(loaded.policies, reference, namespace, selection)
        if digest is None and deadline is not None and not needs_evidence:
            digest, marker = "", (0, 0)  # decided on the name alone: nothing to pin
        key = cached = None
        if digest is not None:
            key = self._key(digest, reference, policy, adhoc, loaded, selection)
            if adhoc is None:
                cached = self._cached((*key, marker))
        return _Plan(digest, marker, loaded, selection, needs_evidence, key, cached)

    def _at_hand(self, plan: _Plan, offline: bool, deadline: float | None) -> Decision | None:
        """The cached decision when judging needs nothing more from the store or a registry."""
        if plan.cached is None:
            return None
        if self._fetches(plan.marker, plan.needs_evidence, offline, deadline, plan.cached):
            return None
        return plan.cached

    @staticmethod
    def _key(
        digest: str,
        reference: ImageReference,
        policy: str,
        adhoc: LoadedPolicy | None,
        loaded: LoadedPolicy,
        selection: tuple[bool, ...],
    ) -> tuple[object, ...]:
        """The decision cache's key, but for the attachments marker."""
        # By name, tag and digest: ``api:1.4`` and ``api:1.4@sha256:…`` (its pinned spelling, as
        # admission writes it into a template's Pods) offer the policies the same strings.
        return (
            digest,
            reference.name,
            reference.tag,
            policy if adhoc is None else None,
            loaded.version,
            loaded.trust.version,
            selection,
        )

    def _fetches(
        self,
        marker: tuple[int, int],
        needs_evidence: bool,
        offline: bool,
        deadline: float | None,
        cached: Decision | None,
    ) -> bool:
        """Whether to fetch a digest's attachments live first: the catalog has none, the policy
        needs evidence, and it is allowed (not offline; with a deadline, only when no decision
        is cached: the catalog comes first)."""
        catalog_first = deadline is not None and cached is not None
        return (
            self.index_live is not None
            and marker[0] == 0
            and needs_evidence
            and not offline
            and not catalog_first
        )

    def _answer(
        self,
        reference: ImageReference,
        policy: str,
        adhoc: LoadedPolicy | None,
        loaded: LoadedPolicy,
        decision: Decision,
        new: tuple[object, ...] | None,
        asked: Asked | None,
        started: float,
    ) -> CheckResult:
        """``decision`` logged (refused when it cannot be: fail closed), cached under ``new``
        when it was just decided, counted."""
        name = policy if adhoc is None else None
        cached = new is None
        answer = decision
        text = str(reference)
        trust = loaded.trust.version
        if adhoc is None and not self.audit.add(text, decision, trust, cached, asked):
            answer = self.audit.refusal(decision)  # fail closed: never an unrecorded decision
        if new is not None and adhoc is None:
            with self._lock:
                self._cache[new] = decision
                if len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        metrics.gate_decided(name, answer.allowed, time.monotonic() - started, cached)
        return CheckResult(answer, text, trust, cached)

    def _selection(self, policies: PolicySet, namespace: Namespace | None) -> tuple[bool, ...]:
        """``policies.selection(namespace)``, without asking each policy in turn when none of
        them selects namespaces (most sets): whether one does is kept per set."""
        if namespace is None:
            return ()
        scoped = self._scoped.get(policies.digest)
        if scoped is None:
            scoped = any(policy.namespaces is not None for policy in policies.policies)
            if len(self._scoped) >= self._cache_size:
                self._scoped.clear()
            self._scoped[policies.digest] = scoped
        return policies.selection(namespace) if scoped else ()

    def _needs_evidence(
        self,
        policies: PolicySet,
        reference: ImageReference,
        namespace: Namespace | None,
        selection: tuple[bool, ...],
    ) -> bool:
        """``policies.needs_evidence`` for ``reference``, kept: matching its globs is most of
        a warm check's work. The namespace counts only through which policies select it."""
        key = (policies.digest, str(reference), selection)
        needs = self._evidence_needs.get(key)
        if needs is None:
            needs = policies.needs_evidence(reference_candidates(str(reference), ""), namespace)
            if len(self._evidence_needs) >= self._cache_size:
                self._evidence_needs.clear()
            self._evidence_needs[key] = needs
        return needs

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
        parsed = _parsed(images)
        found = iter(self._states([r for r in parsed if r is not None], policy, False, adhoc))
        return [None if r is None else next(found) for r in parsed]

    def known_states(
        self, images: Sequence[str], policy: str = DEFAULT_POLICY, adhoc: LoadedPolicy | None = None
    ) -> list[State | None] | None:
        """:meth:`states` when the read model holds them all (no I/O: callable on the event
        loop), else None."""
        parsed = _parsed(images)
        found = self._known([r for r in parsed if r is not None], policy, False, adhoc)
        if found is None:
            return None
        states = iter(found)
        return [None if r is None else next(states) for r in parsed]

    def _known(
        self,
        references: Sequence[ImageReference],
        policy: str,
        live: bool,
        adhoc: LoadedPolicy | None,
    ) -> list[State] | None:
        """The states of ``references`` from the read model and the loaded policies, or None
        when anything would need the database."""
        return self._load_states(references, policy, live, adhoc, read=False)

    def _states(
        self,
        references: Sequence[ImageReference],
        policy: str,
        live: bool,
        adhoc: LoadedPolicy | None,
    ) -> list[State]:
        """Each tag's digest (None when the catalog did not resolve it), the policy set to
        judge with, the attachments marker: from the read model, else in one read."""
        states = self._load_states(references, policy, live, adhoc, read=True)
        assert states is not None  # read=True: every miss is read
        return states

    def _load_states(
        self,
        references: Sequence[ImageReference],
        policy: str,
        live: bool,
        adhoc: LoadedPolicy | None,
        *,
        read: bool,
    ) -> list[State] | None:
        """:meth:`_states`; with ``read`` False, None at the first thing the read model or the
        loaded policies lack (no I/O: callable on the event loop)."""
        named = None if adhoc else policy
        keys: list[Key] = [(str(r), named, not live) for r in references]
        rows = self._state_cache.get(keys)
        missing = [i for i, row in enumerate(rows) if row is None]
        if missing:
            if not read:
                return None
            generation = self._state_cache.generation
            # One read for what the model lacks: each tag, the policy version, the attachments
            # markers; on a bare connection, as the ORM's per-statement work would cost more.
            with self._engine.connect() as connection:
                found = verifications.gate_states(
                    connection, [references[i] for i in missing], named, resolve_tag=not live
                )
            self._state_cache.put(
                generation, [(keys[i], r) for i, r in zip(missing, found, strict=True)]
            )
            for i, read_row in zip(missing, found, strict=True):
                rows[i] = read_row
        states: list[State] = []
        for row in rows:
            assert row is not None  # every miss was read above
            digest, version, marker = row
            loaded = adhoc or self._policies.get((policy, version or 0))
            if loaded is None:
                if not read:
                    return None
                with self._engine.connect() as connection:
                    loaded = self._policy(connection, policy, version)
            states.append((digest, loaded, marker))
        return states

    def _marker(self, digest: str) -> tuple[int, int]:
        with self._engine.connect() as connection:
            return verifications.attachments_marker(connection, digest)

    def _decide(
        self, digest: str, reference: str, loaded: LoadedPolicy, namespace: Namespace | None
    ) -> Decision:
        """Verify what was never verified under this trust version, then evaluate."""
        facts = self._stored_facts(digest, reference, loaded)
        return evaluate(
            loaded.policies, facts, policy_version=loaded.version or None, namespace=namespace
        )

    def _stored_facts(self, digest: str, reference: str, loaded: LoadedPolicy) -> ImageFacts:
        """:meth:`facts` in a transaction of their own, what was verified stored. A check that
        verified the same new signature at the same time may store its result first: this one's
        then fails on the unique key, and is read again with that result (the same inputs, the
        same result)."""

        def gathered() -> ImageFacts:
            with self._engine.begin() as connection:
                keep = loaded.keeps_verifications
                return self.facts(connection, digest, reference, loaded.trust, keep)

        try:
            return gathered()
        except IntegrityError as exc:
            if not lost_a_race_to_insert(exc):
                raise
        return gathered()

    def evaluate_catalog(
        self, loaded: LoadedPolicy, *, stop: threading.Event | None = None
    ) -> list[CheckResult]:
        """What ``loaded`` would decide for every tagged image of the catalog (nothing logged).

        Once ``stop`` is set (whoever asked is gone) it ends at the next image, and what it
        returns is partial: only for a caller that will not read it. Each image's facts are
        gathered (their verifications stored) in a transaction of their own: one for the whole
        walk held the database's write lock from the first verification on (SQLite's is the
        database's), and the decision log, crawls and every other writer waited it out."""
        results = []
        known: dict[str, ImageFacts] = {}  # a digest's facts, whichever of its tags asks first
        with self._engine.connect() as connection:
            images = verifications.tagged_images(connection)
        for host, repository, tag, digest in images:
            if stop is not None and stop.is_set():
                break
            reference = f"{host}/{repository}:{tag}"
            if digest not in known:
                known[digest] = self._stored_facts(digest, reference, loaded)
            facts = known[digest]._replace(reference=reference)
            decision = evaluate(loaded.policies, facts, policy_version=loaded.version or None)
            results.append(CheckResult(decision, reference, loaded.trust.version, False))
        return results


@lru_cache(maxsize=4096)
def _reference(image: str) -> ImageReference:
    """``image`` parsed (kept: a gate sees the same images again and again)."""
    return parse_image_reference(image, "latest")


def _parsed(images: Sequence[str]) -> list[ImageReference | None]:
    parsed: list[ImageReference | None] = []
    for image in images:
        try:
            parsed.append(_reference(image))
        except OCIError:
            parsed.append(None)
    return parsed


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
    sessions: sessionmaker[Session] | Engine,
    trust: TrustConfig,
    secrets: Secrets | Callable[[], Secrets] | None = None,
    *,
    limits: RegistryOptions | None = None,
    audit: DecisionLog | None = None,
    inline: bool = False,
    public_strangers: bool = False,
) -> Gate:
    """The gate, asking registries live for what the catalog has not seen (with the named
    ``secrets`` their registries refer to, none by default — or what makes them, called then —
    and clients under ``limits``), at most 8 images at a time and 4 at one registry (see
    :mod:`catalog.gate._live_work`).
    Given an engine, the indexer's ORM sessions are made when a registry is first asked.
    ``inline``: for a process that asks once (see :class:`Gate`). ``public_strangers``: a
    registry the catalog does not store is asked only on a public network (a server's, whose
    callers name the hosts: :func:`catalog.index.live.resolve_live`)."""

    @cache
    def indexing() -> tuple[sessionmaker[Session], Secrets]:
        from catalog.oci.secrets import Secrets
        from catalog.store.db import session_factory

        made = session_factory(sessions) if isinstance(sessions, Engine) else sessions
        given = secrets() if callable(secrets) else secrets
        return made, given or Secrets()

    live = LiveWork()

    # The indexer (and aiohttp) imported only when a registry is asked: a warm check never is.
    async def resolve(reference: ImageReference) -> str:
        from catalog.index.live import resolve_live

        return await live.run(
            reference.registry,
            ("resolve", str(reference)),
            lambda: resolve_live(
                *indexing(), reference, limits=limits, public_strangers=public_strangers
            ),
        )

    async def fetch(reference: ImageReference, digest: str) -> int:
        from catalog.index.live import index_live

        return await live.run(
            reference.registry,
            ("fetch", reference.registry, reference.repository, digest),
            lambda: index_live(
                *indexing(), reference, digest, limits=limits, public_strangers=public_strangers
            ),
        )

    return Gate(
        sessions,
        trust,
        resolve_live=resolve,
        index_live=fetch,
        audit=audit,
        inline=inline,
        live=live,
    )
