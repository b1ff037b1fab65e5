"""Gate speed beside its limits, in one run.

1. CheckImage with a warm decision cache through a real gRPC channel, beside gRPC health Check
   (an empty handler) on the same server, the same channel and the same concurrency: requests/s
   and p50/p99 latency for both, and the ratio.
2. The same warm CheckImage authenticated (mTLS with a client certificate, and an OIDC JWT from a
   real issuer on loopback, bound to the `gate` role) beside the unauthenticated plain-text server,
   rounds alternating: requests/s of both and the ratio (goal: at least 0.85).
3. Cold verification of 1,000 stored bundles through xregistry's verifier, beside sigstore's own
   ``Verifier.verify_artifact`` on the same bundle, the same number of times.
4. The decision log's write rate on SQLite (``--log-rows``; the gate logs one row per decision):
   rows/s of :class:`DecisionLog` alone, and beside an event loop kept busy with Python work (as
   a serving one is: its writer thread then competes for the GIL), beside the database's own
   rate for the same rows (one ``sqlite3`` executemany, quiet), and the ratios.

Run: ``.venv/bin/python -m bench.gate [--requests 5000] [--concurrency 16] [--bundles 1000]
[--log-rows 20000]`` (a count of 0 skips that part). Needs Debian's ``docker-registry``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import sqlite3
import tempfile
import time
from collections.abc import Awaitable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
from cryptography.hazmat.primitives.asymmetric import ec
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench._load import describe, load
from catalog.api.access import Access, AccessInterceptor
from catalog.api.gate_servicer import GateServicer
from catalog.api.paging import PageTokens
from catalog.api.server import ApiServer, build_server, gate_service
from catalog.api.v1 import catalog_pb2, catalog_pb2_grpc, gate_pb2, gate_pb2_grpc
from catalog.app.auth_config import AuthSettings, Binding, OidcIssuer, Role, StaticToken
from catalog.app.config import RegistryConfig, ServeConfig
from catalog.daemon import Server
from catalog.gate.decision_log import Asked, DecisionLog, asked_columns
from catalog.gate.stored_results import decision_parameters
from catalog.oci.client import RegistryClient
from catalog.store.db import make_engine, session_factory, upgrade
from catalog.store.decision_rows import DECISION_COLUMNS
from catalog.trust import roots
from catalog.trust.policy.facts import Decision
from catalog.trust.policy.stored import Policies
from catalog.trust.verify import verify_bundle
from tests.api.access.certs import Pki
from tests.api.access.issuer import AUDIENCE, Issuer, running_issuer
from tests.harness.images import build_image
from tests.harness.registry import run_registry
from tests.pushing import push_built
from tests.signing import key_policy, push_signature

FIXTURES = Path(
    os.environ.get("XREGISTRY_FIXTURES")
    or Path(__file__).resolve().parents[2] / "shared" / "fixtures"
)


async def gate_bench(args: argparse.Namespace, workdir: Path) -> None:
    with run_registry(workdir, extra={"log": {"level": "error"}}) as reg:
        key = ec.generate_private_key(ec.SECP256R1())
        image = build_image(random.Random(1), layers=1)
        async with RegistryClient(reg.host) as client:
            await push_built(client, "shop/app", image, "1.0")
            await push_signature(client, "shop/app", image.digest, key)
        config = ServeConfig(
            database=f"sqlite:///{workdir / 'gate.db'}",
            listen="127.0.0.1:0",
            registries=[RegistryConfig(name="local", host=reg.host)],
        )
        service = Server(config)
        await service.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel:
                async for _ in catalog_pb2_grpc.CatalogServiceStub(channel).IndexRegistry(
                    catalog_pb2.IndexRegistryRequest(name="registries/local")
                ):
                    pass
                gate = gate_pb2_grpc.GateServiceStub(channel)
                await gate.ApplyPolicy(
                    gate_pb2.ApplyPolicyRequest(
                        policy=gate_pb2.Policy(
                            name="policies/default", source=key_policy(reg.host, key)
                        )
                    )
                )
                request = gate_pb2.CheckImageRequest(image=f"{reg.host}/shop/app:1.0")
                first = await gate.CheckImage(request)
                assert first.decision.allowed, first.decision.reasons
                health: Any = health_pb2_grpc.HealthStub(channel)  # its stubs lack methods
                ping = health_pb2.HealthCheckRequest()
                await load(lambda: health.Check(ping), 500, args.concurrency)  # warm-up
                rps_h, lat_h = await load(
                    lambda: health.Check(ping), args.requests, args.concurrency
                )
                rps_g, lat_g = await load(
                    lambda: gate.CheckImage(request), args.requests, args.concurrency
                )
                print(f"concurrency {args.concurrency}:")
                print(describe("health Check (empty)", rps_h, lat_h))
                print(describe("CheckImage (warm)", rps_g, lat_g))
                print(f"CheckImage / empty handler throughput ratio: {rps_g / rps_h:.2f}")
                # One caller at a time: the latency of a request, with no queue in front of it.
                one_h = await load(lambda: health.Check(ping), 1000, 1)
                one_g = await load(lambda: gate.CheckImage(request), 1000, 1)
                print("concurrency 1:")
                print(describe("health Check (empty)", *one_h))
                print(describe("CheckImage (warm)", *one_g))
                async with running_issuer() as issuer:
                    await authenticated_bench(args, workdir, service, issuer, gate, request)
        finally:
            await service.stop()


async def status_of(call: Awaitable[object]) -> grpc.StatusCode:
    try:
        await call
    except grpc.aio.AioRpcError as error:
        return error.code()
    return grpc.StatusCode.OK


def authenticated_server(
    service: Server, pki: Pki, issuer: Issuer
) -> tuple[ApiServer, AccessInterceptor]:
    """The serve process's gate behind TLS, a required client certificate and the access
    interceptor, with bindings as a deployment would have them."""
    settings = AuthSettings(
        tokens=[StaticToken(name="ops", sha256=hashlib.sha256(b"unused").hexdigest())],
        oidc=[OidcIssuer(issuer=issuer.url, audience=AUDIENCE, groups_claim="groups")],
        certificates=True,
        bindings=[
            Binding(role=Role.GATE, principals=["oidc:repo:acme/app:ref:refs/heads/main"]),
            Binding(role=Role.VIEWER, principals=["cert:spiffe://example.org/ci"]),
            Binding(role=Role.ADMIN, principals=["token:ops"], groups=["platform"]),
        ],
    )
    servicer = GateServicer(
        service.gate, Policies(service.sessions, service.gate.pki_names), PageTokens.random()
    )
    access = AccessInterceptor(Access(settings))
    server = build_server(
        "127.0.0.1:0",
        [gate_service(servicer)],
        interceptors=[access],
        credentials=pki.server_credentials(),
    )
    return server, access


async def authenticated_bench(
    args: argparse.Namespace,
    workdir: Path,
    service: Server,
    issuer: Issuer,
    plain: gate_pb2_grpc.GateServiceAsyncStub,
    request: gate_pb2.CheckImageRequest,
) -> None:
    pki = Pki(workdir / "pki")
    server, access = authenticated_server(service, pki, issuer)
    await server.start()
    client = pki.client("ci", cn="ci", uri="spiffe://example.org/ci")
    metadata = (("authorization", f"Bearer {issuer.token('repo:acme/app:ref:refs/heads/main')}"),)
    try:
        async with grpc.aio.secure_channel(f"127.0.0.1:{server.port}", client) as channel:
            secured = gate_pb2_grpc.GateServiceStub(channel)
            assert (await secured.CheckImage(request, metadata=metadata)).decision.allowed
            # The certificate alone is a viewer: the gate role is the token's.
            assert await status_of(secured.CheckImage(request)) == grpc.StatusCode.PERMISSION_DENIED
            await load(lambda: secured.CheckImage(request, metadata=metadata), 500, 4)  # warm-up
            # Alternating rounds, best of each: the machine is shared, so the fastest round of
            # each side is the one least disturbed by others.
            best_plain: tuple[float, list[float]] = (0.0, [])
            best_auth: tuple[float, list[float]] = (0.0, [])
            for _ in range(3):
                round_plain = await load(
                    lambda: plain.CheckImage(request), args.requests, args.concurrency
                )
                round_auth = await load(
                    lambda: secured.CheckImage(request, metadata=metadata),
                    args.requests,
                    args.concurrency,
                )
                best_plain = max(best_plain, round_plain, key=lambda r: r[0])
                best_auth = max(best_auth, round_auth, key=lambda r: r[0])
        print(f"concurrency {args.concurrency}, best of 3 alternating rounds:")
        print(describe("CheckImage plain", *best_plain))
        print(describe("CheckImage mTLS+JWT", *best_auth))
        print(
            "authenticated / unauthenticated CheckImage throughput ratio:"
            f" {best_auth[0] / best_plain[0]:.2f}"
        )
        assert access.authenticator is not None
        checks = access.authenticator.oidc.signature_checks
        calls = 1 + 500 + 3 * args.requests  # first call, warm-up, rounds
        print(f"JWT signature checks over {calls} calls with the token: {checks}")
    finally:
        await server.stop(grace=None)


def verification_bench(count: int) -> None:
    from sigstore.models import Bundle
    from sigstore.verify import Verifier
    from sigstore.verify.policy import UnsafeNoOp

    artifact = (FIXTURES / "sigstore-python" / "bundle_v3_github.whl").read_bytes()
    bundle_bytes = (FIXTURES / "sigstore-python" / "bundle_v3_github.whl.sigstore").read_bytes()
    subject = f"sha256:{hashlib.sha256(artifact).hexdigest()}"
    trust = roots.load(instances=("production",))
    assert verify_bundle(bundle_bytes, subject, trust).verified

    started = time.perf_counter()
    for _ in range(count):
        result = verify_bundle(bundle_bytes, subject, trust)
    ours = time.perf_counter() - started
    assert result.verified

    verifier = Verifier.production(offline=True)
    started = time.perf_counter()
    for _ in range(count):
        verifier.verify_artifact(artifact, Bundle.from_json(bundle_bytes), UnsafeNoOp())
    raw = time.perf_counter() - started
    print(
        f"cold verification x{count}: xregistry {ours:.2f} s, sigstore verify_artifact {raw:.2f} s,"
        f" ratio {ours / raw:.2f}"
    )


async def decision_log_bench(count: int, workdir: Path) -> None:
    engine = make_engine(f"sqlite:///{workdir / 'log.db'}")
    upgrade(engine)
    sessions = session_factory(engine)
    decision = Decision(True, "sha256:" + "a" * 64, "default", 1, "enforce", ("signed by ci",))
    asked = Asked("shop", "Pod/web", "CREATE", "system:serviceaccount:kube-system:job-controller")

    def queue(log: DecisionLog) -> None:
        for n in range(count):
            assert log.add(f"registry.test/shop/app:{n % 50}", decision, "t", True, asked)

    # The database's own rate: rows as the log makes them, one executemany on a plain sqlite3
    # connection, quiet.
    shared = (datetime.now(UTC), "local:bench", asked_columns(asked))
    queued = [
        (f"registry.test/shop/app:{n % 50}", decision, "t", True, shared) for n in range(count)
    ]
    values = decision_parameters(queued, engine.dialect)
    width = len(DECISION_COLUMNS)
    rows = [tuple(values[start : start + width]) for start in range(0, len(values), width)]
    plain = sqlite3.connect(workdir / "log.db")
    plain.execute("PRAGMA journal_mode=WAL")
    plain.execute("PRAGMA synchronous=NORMAL")
    marks = ", ".join("?" * len(DECISION_COLUMNS))
    started, cpu = time.perf_counter(), time.thread_time()
    with plain:
        plain.executemany(
            f"INSERT INTO decisions ({', '.join(DECISION_COLUMNS)}) VALUES ({marks})", rows
        )
    floor = count / (time.perf_counter() - started)
    floor_cpu = (time.thread_time() - cpu) / count * 1e6
    plain.close()

    # Quiet: the rows queued (a writer that sleeps for an hour), then one flush.
    log = DecisionLog(sessions, capacity=count, interval=3600)
    log.start()
    queue(log)
    started, cpu = time.perf_counter(), time.thread_time()
    assert log.flush() == count
    alone = count / (time.perf_counter() - started)
    alone_cpu = (time.thread_time() - cpu) / count * 1e6
    await log.stop()

    # Beside a busy event loop: the log's own writer, as it runs in the server.
    log = DecisionLog(sessions, capacity=count)
    log.start()
    queue(log)  # no await: the writer starts once this is done
    body = json.dumps({"spec": {"containers": [{"name": f"c{n}"} for n in range(50)]}})
    started = time.perf_counter()
    while log.waiting:
        for _ in range(20):  # a serving loop's work: Python, a millisecond or so at a time
            json.loads(body)
        await asyncio.sleep(0)
    busy = count / (time.perf_counter() - started)
    await log.stop()
    engine.dispose()
    print(f"decision log on SQLite, {count} rows:")
    print(f"  sqlite3 executemany (quiet)     {floor:8.0f} rows/s   {floor_cpu:5.1f} us CPU a row")
    print(
        f"  DecisionLog, quiet              {alone:8.0f} rows/s   {alone_cpu:5.1f} us CPU a row"
        f"   ratio {alone / floor:.2f}"
    )
    print(f"  DecisionLog, busy event loop    {busy:8.0f} rows/s   ratio {busy / floor:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--bundles", type=int, default=1000)
    parser.add_argument("--log-rows", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="xregistry-bench-") as tmp:
        if args.requests:
            asyncio.run(gate_bench(args, Path(tmp)))
        if args.log_rows:
            asyncio.run(decision_log_bench(args.log_rows, Path(tmp)))
    if args.bundles:
        verification_bench(args.bundles)


if __name__ == "__main__":
    main()
