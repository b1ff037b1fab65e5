"""What a replication run did: counters, and the images that failed with their reasons."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from catalog.errors import CatalogError
from catalog.oci.copy import CopyStats


class TagConflict(CatalogError):
    """A destination tag points elsewhere and the rule says to report, not overwrite."""


Outcome = Literal["failed", "conflict", "denied"]


@dataclass(slots=True)
class Tally:
    copied: int = 0
    skipped: int = 0  # already at the destination
    failed: int = 0


@dataclass(frozen=True, slots=True)
class ImageError:
    repository: str  # at the source
    tag: str  # empty when the whole repository could not be listed
    reason: str
    outcome: Outcome = "failed"  # denied: the rule's policy does not allow the image


@dataclass(slots=True)
class RunReport:
    source: str
    destination: str
    images_total: int = 0
    images: Tally = field(default_factory=Tally)
    images_denied: int = 0  # by the rule's policy: not copied, and not a failure
    manifests: Tally = field(default_factory=Tally)
    blobs: Tally = field(default_factory=Tally)
    bytes: Tally = field(default_factory=Tally)
    blobs_mounted: int = 0  # counted in blobs.skipped too: nothing was transferred
    referrers: Tally = field(default_factory=Tally)  # referrer manifests and cosign tags
    errors: list[ImageError] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def images_done(self) -> int:
        return self.images.copied + self.images.skipped + self.images.failed + self.images_denied

    @property
    def ok(self) -> bool:
        return all(e.outcome == "denied" for e in self.errors)

    def add(self, stats: CopyStats) -> None:
        self.manifests.copied += stats.manifests_copied
        self.manifests.skipped += stats.manifests_skipped
        self.manifests.failed += stats.manifests_failed
        self.blobs.copied += stats.blobs_copied
        self.blobs.skipped += stats.blobs_skipped + stats.blobs_mounted
        self.blobs.failed += stats.blobs_failed
        self.blobs_mounted += stats.blobs_mounted
        self.bytes.copied += stats.bytes_copied
        self.bytes.skipped += stats.bytes_skipped
        self.bytes.failed += stats.bytes_failed

    def as_dict(self) -> dict[str, Any]:
        def tally(t: Tally) -> dict[str, int]:
            return {"copied": t.copied, "skipped": t.skipped, "failed": t.failed}

        return {
            "source": self.source,
            "destination": self.destination,
            "seconds": round(self.seconds, 3),
            "images_total": self.images_total,
            "images": {**tally(self.images), "denied": self.images_denied},
            "manifests": tally(self.manifests),
            "blobs": {**tally(self.blobs), "mounted": self.blobs_mounted},
            "bytes": tally(self.bytes),
            "referrers": tally(self.referrers),
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


ProgressCallback = Callable[[RunReport], None]
