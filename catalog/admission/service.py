"""Answering an AdmissionReview from the gate: each image judged (catalog first, live work only
within the review's deadline), denials and warnings worded for ``kubectl``, tags pinned.

One code path for the HTTPS webhook and ``xregistry admission review``::

    admission = Admission(gate, settings)
    answer = await admission.review(body, budget=10.0, mutate=False)   # the AdmissionReview
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, NamedTuple

from catalog.admission.images import ImageSite, image_sites
from catalog.admission.namespaces import KnownLabels, LabelSource
from catalog.admission.review import Request, parse_review, response
from catalog.app.admission_config import DEFAULT_TIMEOUT, MAX_TIMEOUT, AdmissionSettings
from catalog.errors import DeadlineExceeded, NotFound
from catalog.gate import Asked, CheckResult, Gate, LoadedPolicy
from catalog.memo import IdentityMemo
from catalog.oci.errors import InvalidReference, NotAsked, NotInRegistry, OCIError
from catalog.oci.reference import parse_image_reference
from catalog.trust.policy import WARNING, Decision, Namespace
from catalog.trust.policy.image_globs import glob_regex, reference_candidates

log = logging.getLogger("xregistry.admission")
ANNOTATION_IMAGES = 5  # images named in an audit annotation before "and N more"


class Judged(NamedTuple):
    """One image's outcome: the gate's decision, or what the failure mode made of an error."""

    image: str
    allowed: bool
    digest: str  # "" when none was judged (nothing to pin)
    denials: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    exempt: bool = False


@lru_cache(maxsize=4096)  # a template's images, pinned again for every review of it
def pinned(image: str, digest: str) -> str | None:
    """``image`` pinned to ``digest`` as written plus ``@digest`` (``api:1.4@sha256:…``; a bare
    name gets its implied ``:latest``, so tag globs still apply), or None when it needs none."""
    if not digest:
        return None
    parsed = parse_image_reference(image, None)
    if parsed.digest is not None:
        return None  # already pinned: left exactly as written
    return f"{image}{'' if parsed.tag else ':latest'}@{digest}"


class Admission:
    def __init__(
        self,
        gate: Gate,
        settings: AdmissionSettings,
        labels: LabelSource | None = None,
        *,
        adhoc: LoadedPolicy | None = None,
        offline: bool = False,
    ) -> None:
        self.gate = gate
        self.settings = settings
        self.labels = labels or KnownLabels(None)
        self.adhoc = adhoc  # a policy file (the CLI), judged without being stored
        self.offline = offline
        self._exempt_images = glob_regex(settings.exempt_images) if settings.exempt_images else None

    async def review(self, body: bytes, *, budget: float | None, mutate: bool) -> dict[str, Any]:
        """The AdmissionReview answering ``body`` within ``budget`` seconds (the API server's
        ``?timeout=``); ReviewError for a body that is not a review."""
        loop = asyncio.get_running_loop()
        budget = min(budget or DEFAULT_TIMEOUT, MAX_TIMEOUT)
        deadline = loop.time() + max(budget - self.settings.margin_seconds, 0.0)
        request = parse_review(body)
        if request.namespace in self.settings.exempt_namespaces:
            return response(
                request.uid, allowed=True, annotations={"exempt": f"namespace {request.namespace}"}
            )
        sites = image_sites(request, self.settings.max_containers)
        if not sites:
            return response(request.uid, allowed=True)
        namespace = None
        if request.namespace:
            labels: Mapping[str, str] | None = None  # unknown when not read in time
            if isinstance(self.labels, KnownLabels):  # no I/O: no timer, no await
                labels = self.labels.given
            else:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout_at(deadline):
                        labels = await self.labels.labels(request.namespace)
            namespace = Namespace(request.namespace, labels)
        asked = Asked(
            namespace=request.namespace or None,
            object=request.object_ref,
            operation=request.operation,
            user=request.user or None,
            dry_run=request.dry_run,
        )
        images = list(dict.fromkeys(site.image for site in sites))
        judging = images
        if self._exempt_images is not None:
            judging = [image for image in images if not self._exempt(image)]
        # The gate's read model (warm: no database, no thread), else one read of the catalog
        # for every image; then all judged at once.
        states = self.gate.known_states(judging, self.settings.policy, self.adhoc)
        if states is None:
            # By the deadline too: a database that stalls (locked, a failover) must not hold
            # the review past the API server's timeout, where its failurePolicy answers.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(deadline):
                    states = await asyncio.to_thread(
                        self.gate.states, judging, self.settings.policy, self.adhoc
                    )
        # A warm image is answered at once (no task); the rest are judged concurrently.
        judging_with: dict[str, Any] = {
            "offline": self.offline,
            "adhoc": self.adhoc,
            "namespace": namespace,
            "deadline": deadline,
            "asked": asked,
        }
        judged: dict[str, Judged] = {}
        checks: dict[str, asyncio.Future[CheckResult]] = {}
        policy = self.settings.policy
        if states is None:  # the catalog did not answer in time
            why = "could not read the catalog in time"
            judged = {image: self._failure(image, asked, why) for image in judging}
        else:
            known = self.gate.known_checks(
                judging, policy, states, self.offline, self.adhoc, namespace, deadline, asked
            )
            for image, state, at_hand in zip(judging, states, known, strict=True):
                if at_hand is not None:
                    judged[image] = _from_decision(image, at_hand.decision)
                else:
                    work = self.gate.check(image, policy, state=state, **judging_with)
                    checks[image] = asyncio.ensure_future(work)
        late: set[asyncio.Future[CheckResult]] = set()
        if checks:
            # The gate stops live work at the deadline; this also bounds verification, which
            # runs on a thread (its result is stored and cached for the next review).
            _, late = await asyncio.wait(checks.values(), timeout=deadline - loop.time())
            for check in late:
                check.cancel()
        for image, check in checks.items():
            judged[image] = self._outcome(image, check, asked, check in late)
        by_image = judged  # all answered warm, in the object's order
        # Live answers came after the warm ones, and exempt images were never judged: the
        # object's order again, an exempt image allowed as such.
        if checks or len(judging) < len(images):
            by_image = {
                image: judged[image] if image in judged else Judged(image, True, "", exempt=True)
                for image in images
            }
        if mutate:
            return _mutation(request, sites, by_image)
        return _validation(request, sites, by_image)

    def _exempt(self, image: str) -> bool:
        assert self._exempt_images is not None
        return any(self._exempt_images.fullmatches(c) for c in reference_candidates(image, ""))

    def _outcome(
        self, image: str, check: asyncio.Future[CheckResult], asked: Asked, late: bool
    ) -> Judged:
        if late:
            return self._failure(image, asked, "could not verify in time")
        exc = check.exception()
        if exc is None:
            return _from_decision(image, check.result().decision)
        if isinstance(exc, InvalidReference):
            return self._record(image, asked, False, f"not an image reference: {exc}")
        if isinstance(exc, NotFound | NotInRegistry | NotAsked):
            return self._record(image, asked, False, str(exc))
        if isinstance(exc, DeadlineExceeded | OCIError):
            return self._failure(image, asked, str(exc))
        raise exc

    def _failure(self, image: str, asked: Asked, why: str) -> Judged:
        """Not verified in time, or the registry failing: as ``failure`` says."""
        if self.settings.failure == "allow":
            return self._record(image, asked, True, f"{why}; allowed by failure mode allow")
        return self._record(image, asked, False, why)

    def _record(self, image: str, asked: Asked, allowed: bool, reason: str) -> Judged:
        """An outcome the gate did not decide, logged as a decision all the same."""
        reason = reason.splitlines()[0][:300] if reason else "refused"
        decision = Decision(allowed, "", None, None, None, (reason,))
        if self.adhoc is None and not self.gate.audit.add(
            image, decision, self.gate.trust.version, False, asked
        ):
            decision = self.gate.audit.refusal(decision)
            allowed, reason = False, decision.reasons[0]
        if allowed:
            return Judged(image, True, "", warnings=(reason,))
        return Judged(image, False, "", denials=(reason,))


# What a decision makes of an image, kept per decision object: the gate answers warm reviews
# with the same cached decisions again and again. A Judged is immutable.
_JUDGED: IdentityMemo[Decision, Judged] = IdentityMemo()


def _from_decision(image: str, decision: Decision) -> Judged:
    kept = _JUDGED.get(decision)
    if kept is not None and kept.image == image:
        return kept
    denials = tuple(r for r in decision.reasons if not r.startswith(WARNING))
    warnings = tuple(r.removeprefix(WARNING) for r in decision.reasons if r.startswith(WARNING))
    return _JUDGED.put(
        decision, Judged(image, decision.allowed, decision.digest, denials, warnings)
    )


def _names(values: list[str]) -> str:
    shown = ", ".join(values[:ANNOTATION_IMAGES])
    more = len(values) - ANNOTATION_IMAGES
    return f"{shown} and {more} more" if more > 0 else shown


def _validation(
    request: Request, sites: list[ImageSite], judged: Mapping[str, Judged]
) -> dict[str, Any]:
    denied = [j for j in judged.values() if not j.allowed]
    containers: dict[str, list[str]] = {}
    for site in sites:
        containers.setdefault(site.image, []).append(site.container)
    warnings = [
        f"{j.image} ({', '.join(containers[j.image])}): {w}"
        for j in judged.values()
        for w in j.warnings
    ]
    annotations = {
        "images": str(len(judged)),
        "exempt": str(sum(1 for j in judged.values() if j.exempt)),
    }
    if request.dry_run:
        annotations["dryRun"] = "decided, recorded as a dry run"
    if not denied:
        return response(request.uid, allowed=True, warnings=warnings, annotations=annotations)
    annotations["denied"] = _names([j.image for j in denied])
    parts = [
        f"{j.image} ({', '.join(containers[j.image])}): {'; '.join(j.denials)}" for j in denied
    ]
    what = "image" if len(denied) == 1 else f"{len(denied)} images"
    message = f"xregistry denied {what} of {request.object_ref}: " + " | ".join(parts)
    return response(
        request.uid, allowed=False, message=message, warnings=warnings, annotations=annotations
    )


def _mutation(
    request: Request, sites: list[ImageSite], judged: Mapping[str, Judged]
) -> dict[str, Any]:
    """Pins every tag to the digest judged for it; never denies (validation does)."""
    patch = []
    for site in sites:
        value = pinned(site.image, judged[site.image].digest)
        if value is not None:
            patch.append({"op": "replace", "path": site.pointer, "value": value})
    annotations = {"pinned": str(len(patch))} if patch else None
    return response(request.uid, allowed=True, patch=patch, annotations=annotations)
