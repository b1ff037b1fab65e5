"""What a replication run did: counters, and the images that failed with their reasons.

Plain slotted classes and named tuples, not dataclasses: a dataclass's generated methods are
compiled in every process that imports it (~1 ms each at a command's start).
"""

from collections.abc import Callable
from typing import Any, Literal, NamedTuple

from catalog.errors import CatalogError
from catalog.oci.copy import CopyStats


class TagConflict(CatalogError):
    """A destination tag points elsewhere and the rule says to report, not overwrite."""


Outcome = Literal["failed", "conflict", "denied"]
TALLIED = ("copied", "skipped", "failed")  # the outcomes counted of each kind of thing copied


class Tally:
    """Images by outcome."""

    __slots__ = ("copied", "failed", "skipped")

    def __init__(self) -> None:
        self.copied = 0
        self.skipped = 0  # already at the destination
        self.failed = 0


class ImageError(NamedTuple):
    repository: str  # at the source
    tag: str  # empty when the whole repository could not be listed
    reason: str
    outcome: Outcome = "failed"  # denied: the rule's policy does not allow the image


Action = Literal["copy", "skip", "failed", "conflict", "denied"]


class PlannedCopy(NamedTuple):
    """One image of a dry run: what its copy would do (counts of what the destination lacks)."""

    repository: str  # at the source
    tag: str
    destination: str  # repository at the destination
    digest: str | None  # None when the source could not be read
    action: Action
    manifests: int = 0
    blobs: int = 0
    bytes: int = 0  # the blobs' sizes, from their descriptors
    referrers: int = 0
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return self._asdict()


class RunReport:
    """What a run did so far (its images add to it as they end)."""

    __slots__ = (
        "counts",
        "destination",
        "errors",
        "images",
        "images_denied",
        "images_total",
        "planned",
        "seconds",
        "source",
    )

    def __init__(
        self, source: str, destination: str, planned: list[PlannedCopy] | None = None
    ) -> None:
        self.source = source
        self.destination = destination
        self.images_total = 0
        self.images = Tally()
        self.images_denied = 0  # by the rule's policy: not copied, and not a failure
        self.counts = CopyStats()  # the images' copies, summed
        self.errors: list[ImageError] = []
        self.seconds = 0.0
        self.planned = planned  # a dry run's images (None: a real run)

    @property
    def images_done(self) -> int:
        return self.images.copied + self.images.skipped + self.images.failed + self.images_denied

    @property
    def ok(self) -> bool:
        return all(e.outcome == "denied" for e in self.errors)

    def as_dict(self) -> dict[str, Any]:
        counts = self.counts.as_dict()

        def tally(what: str) -> dict[str, int]:
            return {outcome: counts[f"{what}_{outcome}"] for outcome in TALLIED}

        planned = (
            {}
            if self.planned is None
            else {
                "dryRun": True,
                "planned": [p.as_dict() for p in sorted(self.planned, key=planned_order)],
            }
        )
        return {
            **planned,
            "source": self.source,
            "destination": self.destination,
            "seconds": round(self.seconds, 3),
            "images_total": self.images_total,
            "images": {
                "copied": self.images.copied,
                "skipped": self.images.skipped,
                "failed": self.images.failed,
                "denied": self.images_denied,
            },
            "manifests": tally("manifests"),
            "blobs": {**tally("blobs"), "mounted": self.counts.blobs_mounted},
            "bytes": tally("bytes"),
            "referrers": tally("referrers"),
            "errors": [
                {
                    "repository": e.repository,
                    "tag": e.tag,
                    "reason": e.reason,
                    "outcome": e.outcome,
                }
                for e in self.errors
            ],
        }


def planned_order(planned: PlannedCopy) -> tuple[str, str]:
    """The order planned copies are shown in, as a table or as JSON."""
    return planned.repository, planned.tag


ProgressCallback = Callable[[RunReport], None]
