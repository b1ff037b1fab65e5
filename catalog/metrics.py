"""Every ``xregistry_*`` Prometheus metric, and the one-line calls that record them.

    metrics.enable("replica-a")           # serve: collect from now on (idempotent)
    metrics.gate_decided("prod", allowed=False, seconds=0.004, cached=True)
    body, content_type = metrics.render()

Metrics are collected only in a process that exports them: ``serve`` calls :func:`enable`.
Elsewhere (the CLI) every call is a no-op costing one global lookup, and prometheus_client is
never imported, so commands start no slower. Each process has its own registry: replicas export
their own counts, summed by the query; gauges computed by one replica (lag, queue depth, pool)
carry a ``replica`` label saying which.

Names end in their unit (``_seconds``, ``_bytes``, ``_total`` for counts). Label values are
bounded: registries, rules and policy sets are the configured ones, methods the server's own.
docs/operations.md lists them with their meanings.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry, Counter, Histogram
    from prometheus_client.metrics_core import Metric


class IndexCounts(Protocol):
    """What an index run counted (``catalog.index.IndexStats``)."""

    manifests_new: int
    documents: int
    errors: int


class CopyCounts(Protocol):
    """What a copy counted (``catalog.oci.copy.CopyStats``)."""

    bytes_copied: int
    blobs_copied: int
    blobs_mounted: int


# Seconds: a warm gate decision takes milliseconds, a cold one verifies signatures.
_FAST = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_SLOW = (0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 21600.0)


@dataclass(slots=True)
class _Sources:
    """What the replica gauges read when scraped: cheap reads of this process's state, and the
    per-rule lag refreshed from the store in the background (never queried on a scrape)."""

    replica: str
    queued_decisions: Callable[[], int] | None = None
    pool: Callable[[], tuple[int, int]] | None = None  # (checked out, size)
    lag: Mapping[str, tuple[float, int]] = field(default_factory=dict)  # rule → (s, changes)


class _ReplicaGauges:
    """Gauges computed by this replica, labelled with its name (a custom collector, so that a
    refresh replaces all rules at once and a deleted rule's series disappears)."""

    def __init__(self, sources: _Sources) -> None:
        self.sources = sources

    def collect(self) -> Iterable[Metric]:
        from prometheus_client.core import GaugeMetricFamily

        s = self.sources
        lag = GaugeMetricFamily(
            "xregistry_replication_lag_seconds",
            "How long the rule's destination has been behind its source (0: in step)",
            labels=["rule", "replica"],
        )
        pending = GaugeMetricFamily(
            "xregistry_replication_pending_changes",
            "Source tag changes the rule's destination has not received (capped)",
            labels=["rule", "replica"],
        )
        for rule, (seconds, changes) in sorted(s.lag.items()):
            lag.add_metric([rule, s.replica], seconds)
            pending.add_metric([rule, s.replica], changes)
        queued = GaugeMetricFamily(
            "xregistry_decision_log_queued_decisions",
            "Gate decisions waiting to be written to the decision log",
            labels=["replica"],
        )
        checked_out = GaugeMetricFamily(
            "xregistry_db_pool_checked_out_connections",
            "Database connections in use",
            labels=["replica"],
        )
        size = GaugeMetricFamily(
            "xregistry_db_pool_size_connections",
            "Database connections the pool keeps (more may be opened as overflow)",
            labels=["replica"],
        )
        if s.queued_decisions is not None:
            queued.add_metric([s.replica], s.queued_decisions())
        if s.pool is not None:
            used, kept = s.pool()
            checked_out.add_metric([s.replica], used)
            size.add_metric([s.replica], kept)
        return [lag, pending, queued, checked_out, size]


class _Metrics:
    def __init__(self, replica: str) -> None:
        from prometheus_client import (
            CollectorRegistry,
            Counter,
            Histogram,
            disable_created_metrics,
        )
        from prometheus_client.gc_collector import GCCollector
        from prometheus_client.platform_collector import PlatformCollector
        from prometheus_client.process_collector import ProcessCollector

        # One sample per series: the _created ones only add noise.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        r = self.registry = CollectorRegistry()
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        GCCollector(registry=r)

        def counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
            return Counter(name, doc, labels, registry=r)

        def histogram(
            name: str, doc: str, labels: tuple[str, ...], buckets: tuple[float, ...]
        ) -> Histogram:
            return Histogram(name, doc, labels, registry=r, buckets=buckets)

        # -- the gate
        self.gate_decisions = counter(
            "xregistry_gate_decisions_total",
            "Gate decisions answered, by policy set and outcome (allowed, denied)",
            ("policy", "outcome"),
        )
        self.gate_seconds = histogram(
            "xregistry_gate_check_duration_seconds",
            "Time to answer one gate check, by whether the decision cache had it",
            ("cache",),
            _FAST,
        )
        self.gate_cache = counter(
            "xregistry_gate_cache_lookups_total",
            "Decision cache lookups by result (hit, miss)",
            ("result",),
        )
        self.verifications = counter(
            "xregistry_signature_verifications_total",
            "Signatures verified (once per trust version) by method and result",
            ("method", "result"),
        )
        self.admission_seconds = histogram(
            "xregistry_admission_review_duration_seconds",
            "Time to answer one Kubernetes admission review, by outcome",
            ("outcome",),
            _FAST,
        )
        # -- the indexer
        self.index_runs = counter(
            "xregistry_index_runs_total",
            "Index runs by registry and outcome (succeeded, errors, failed, interrupted)",
            ("registry", "outcome"),
        )
        self.index_seconds = histogram(
            "xregistry_index_duration_seconds", "Time of one index run", ("registry",), _SLOW
        )
        self.index_manifests = counter(
            "xregistry_index_manifests_total", "Manifests newly recorded", ("registry",)
        )
        self.index_documents = counter(
            "xregistry_index_documents_total",
            "Attachment documents decoded and recorded (signatures, attestations, SBOMs)",
            ("registry",),
        )
        self.index_errors = counter(
            "xregistry_index_errors_total",
            "Index errors recorded (unreadable documents, refused names, failed requests)",
            ("registry",),
        )
        # -- replication
        self.replication_tasks = counter(
            "xregistry_replication_tasks_total",
            "Replication tasks (one image each) by rule and outcome",
            ("rule", "outcome"),
        )
        self.copied_bytes = counter(
            "xregistry_replication_copied_bytes_total", "Blob bytes copied", ("rule",)
        )
        self.copied_blobs = counter(
            "xregistry_replication_copied_blobs_total", "Blobs copied", ("rule",)
        )
        self.mounted_blobs = counter(
            "xregistry_replication_mounted_blobs_total",
            "Blobs mounted from another repository instead of copied",
            ("rule",),
        )
        # -- the decision log, the API
        self.decision_log_failures = counter(
            "xregistry_decision_log_write_failures_total",
            "Failed writes of the decision log (retried) and decisions it refused to record",
        )
        self.grpc_handled = counter(
            "xregistry_grpc_handled_total",
            "gRPC calls handled, by method and status code",
            ("method", "code"),
        )
        self.grpc_seconds = histogram(
            "xregistry_grpc_handling_duration_seconds",
            "Time to handle one gRPC call (streams: until their end), by method and code",
            ("method", "code"),
            (*_FAST, 30.0, 60.0, 120.0),
        )
        self.replica = _Sources(replica)
        r.register(_ReplicaGauges(self.replica))
        # The series of the per-call metrics by label values, kept: ``labels()`` costs more
        # than the increment itself, on every gRPC call and gate check.
        self._grpc: dict[tuple[str, str], tuple[Counter, Histogram]] = {}
        self._gate: dict[tuple[str, str, str], tuple[Counter, Counter, Histogram]] = {}

    def grpc_series(self, method: str, code: str) -> tuple[Counter, Histogram]:
        series = self._grpc.get((method, code))
        if series is None:
            series = (
                self.grpc_handled.labels(method, code),
                self.grpc_seconds.labels(method, code),
            )
            self._grpc[(method, code)] = series
        return series

    def gate_series(
        self, policy: str, outcome: str, cache: str
    ) -> tuple[Counter, Counter, Histogram]:
        key = (policy, outcome, cache)
        series = self._gate.get(key)
        if series is None:
            series = (
                self.gate_decisions.labels(policy, outcome),
                self.gate_cache.labels(cache),
                self.gate_seconds.labels(cache),
            )
            self._gate[key] = series
        return series


_active: _Metrics | None = None
_enabling = threading.Lock()


def enable(replica: str) -> CollectorRegistry:
    """Collect metrics in this process from now on; gauges say they come from ``replica``."""
    global _active
    with _enabling:
        if _active is None:
            _active = _Metrics(replica)
        _active.replica.replica = replica
        return _active.registry


def render() -> tuple[bytes, str]:
    """The exposition text of every metric, and its content type."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    if _active is None:
        raise RuntimeError("metrics are not enabled in this process")
    return generate_latest(_active.registry), CONTENT_TYPE_LATEST


def watch(
    *,
    queued_decisions: Callable[[], int] | None,
    pool: Callable[[], tuple[int, int]] | None,
) -> None:
    """What the decision-log and pool gauges read on each scrape (None: stop reading)."""
    if _active is not None:
        _active.replica.queued_decisions = queued_decisions
        _active.replica.pool = pool


def rule_lag(lag: Mapping[str, tuple[float, int]]) -> None:
    """Replace every rule's lag: rule → (seconds behind, pending changes)."""
    if _active is not None:
        _active.replica.lag = dict(lag)


# -- one-line calls -------------------------------------------------------------------------


def gate_decided(policy: str | None, allowed: bool, seconds: float, cached: bool) -> None:
    """A gate answer (``policy`` None: an ad hoc policy set, not a stored one)."""
    if (m := _active) is not None:
        decisions, lookups, took = m.gate_series(
            policy or "(adhoc)", "allowed" if allowed else "denied", "hit" if cached else "miss"
        )
        decisions.inc()
        lookups.inc()
        took.observe(seconds)


def verified(method: str | None, ok: bool) -> None:
    if (m := _active) is not None:
        m.verifications.labels(method or "none", "verified" if ok else "failed").inc()


def observe_admission(seconds: float, outcome: str) -> None:
    """One admission review answered: ``outcome`` allowed, denied or error."""
    if (m := _active) is not None:
        m.admission_seconds.labels(outcome).observe(seconds)


def index_ran(
    registry: str, outcome: str, started: datetime, counts: IndexCounts | None = None
) -> None:
    """An index run begun at ``started`` ended: succeeded, errors (got to the end with index
    errors), failed, interrupted."""
    if (m := _active) is not None:
        m.index_runs.labels(registry, outcome).inc()
        m.index_seconds.labels(registry).observe((datetime.now(UTC) - started).total_seconds())
        if counts is not None:
            m.index_manifests.labels(registry).inc(counts.manifests_new)
            m.index_documents.labels(registry).inc(counts.documents)
            m.index_errors.labels(registry).inc(counts.errors)


def replicated(rule: str, outcome: str, counts: CopyCounts) -> None:
    """A replication task ended with ``outcome`` (copied, skipped, failed, denied, conflict)."""
    if (m := _active) is not None:
        m.replication_tasks.labels(rule, outcome).inc()
        m.copied_bytes.labels(rule).inc(counts.bytes_copied)
        m.copied_blobs.labels(rule).inc(counts.blobs_copied)
        m.mounted_blobs.labels(rule).inc(counts.blobs_mounted)


def decision_log_failed() -> None:
    if (m := _active) is not None:
        m.decision_log_failures.inc()


def grpc_handled(method: str, code: str, seconds: float) -> None:
    if (m := _active) is not None:
        handled, took = m.grpc_series(method, code)
        handled.inc()
        took.observe(seconds)
