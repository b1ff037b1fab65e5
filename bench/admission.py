"""Admission webhook speed beside its limits, in one run.

1. A 5-container Pod review (5 signed images, warm catalog and decision cache) posted over
   HTTPS with a bearer token, as the API server posts it, beside an empty handler (reads the
   body, answers a constant AdmissionReview) on the same listener, behind the same TLS and
   access control, from the same client at the same concurrency: reviews/s, p50/p99 latency
   and the ratio. Aim: p99 <= 10 ms and >= 0.5 of the empty handler's throughput.
   Also the review alone, called in process (no HTTP): the part of the above that is ours.
2. Cold reviews against the 10 s budget policy-controller works under: a Pod whose image the
   catalog has indexed but never verified, and one the catalog has never seen (tag resolved,
   signature fetched and verified live, within the review's deadline).

Run: ``.venv/bin/python -m bench.admission [--requests 3000] [--concurrency 8]``
Needs Debian's ``docker-registry``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import json
import random
import ssl
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec

from bench import _load
from bench._load import load
from catalog.admission import Admission
from catalog.api.access.permissions import ENDPOINTS, Permission
from catalog.api.admission import admission_app
from catalog.api.http import HttpListener
from catalog.app.admission_config import AdmissionSettings
from catalog.app.auth_config import AuthSettings, Binding, Role, StaticToken
from catalog.app.config import RegistryConfig, ServeConfig
from catalog.daemon import Server
from catalog.oci.client import RegistryClient
from catalog.principals import SERVER, acting_as
from catalog.trust.policy.stored import Policies
from tests.admission.reviews import pod_spec, review, workload
from tests.api.peer import make_pki
from tests.harness.images import build_image
from tests.harness.registry import run_registry
from tests.pushing import push_built
from tests.signing import key_policy, push_signature

TOKEN = "bench-kube-apiserver"
BUDGET = 10.0  # seconds: the API server's default webhook timeout, policy-controller's too


def describe(label: str, rps: float, lat: list[float]) -> str:
    return _load.describe(label, rps, lat, unit="reviews/s", width=26)


class GcPauses:
    """The collector's pauses (ms), from ``gc.callbacks``: every call in flight waits them out."""

    def __init__(self) -> None:
        self.ms: list[float] = []
        self._started = 0.0

    def seen(self, phase: str, _info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.ms.append((time.perf_counter() - self._started) * 1000)


async def empty(request: web.Request) -> web.Response:
    await request.read()
    return web.json_response(
        {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "response": {"uid": "-", "allowed": True},
        }
    )


async def push_signed(
    host: str, key: ec.EllipticCurvePrivateKey, tags: list[str], seed: int
) -> None:
    rng = random.Random(seed)
    async with RegistryClient(host) as client:
        for tag in tags:
            image = build_image(rng, layers=1, layer_size=512)
            await push_built(client, "shop/app", image, tag)
            await push_signature(client, "shop/app", image.digest, key)


async def bench(args: argparse.Namespace, workdir: Path) -> None:
    pki = make_pki(workdir / "pki")
    with run_registry(workdir, extra={"log": {"level": "error"}}) as reg:
        key = ec.generate_private_key(ec.SECP256R1())
        warm_tags = [f"v{i}" for i in range(5)]
        await push_signed(reg.host, key, [*warm_tags, "indexed-cold"], 1)
        config = ServeConfig(
            database=f"sqlite:///{workdir / 'admission.db'}",
            listen="127.0.0.1:0",
            registries=[RegistryConfig(name="local", host=reg.host)],
            auth=AuthSettings(
                tokens=[
                    StaticToken(
                        name="kube-apiserver", sha256=hashlib.sha256(TOKEN.encode()).hexdigest()
                    )
                ],
                bindings=[Binding(role=Role.GATE, principals=["token:kube-apiserver"])],
            ),
            admission=AdmissionSettings(tls=pki.settings()),
        )
        service = Server(config)
        await service.start()
        with acting_as(SERVER):
            await service.catalog.index("local")
            Policies(service.sessions, set()).apply("default", key_policy(reg.host, key))
        await push_signed(reg.host, key, ["never-seen"], 2)  # after indexing: live only
        admission = Admission(service.gate, config.admission)
        endpoints = {**ENDPOINTS, "POST /bench/empty": Permission.CHECK}
        app = admission_app(admission, config, service.access, endpoints=endpoints)
        app.router.add_post("/bench/empty", empty)
        listener = HttpListener("admission", "127.0.0.1:0", app, tls=pki.settings())
        await listener.start()
        context = ssl.create_default_context(cadata=pki.ca.cert_pem.decode())
        base = f"https://127.0.0.1:{listener.port}"
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        connector = aiohttp.TCPConnector(ssl=context, limit=args.concurrency)
        try:
            async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

                async def post(path: str, body: bytes) -> dict[str, Any]:
                    async with session.post(base + path + "?timeout=10s", data=body) as answer:
                        assert answer.status == 200, await answer.text()
                        result: dict[str, Any] = await answer.json()
                        return result

                images = [f"{reg.host}/shop/app:{tag}" for tag in warm_tags]
                pod = workload("Pod", "web", "shop", pod_spec(images))
                body = json.dumps(review(pod)).encode()
                first = await post("/admission/validate", body)
                assert first["response"]["allowed"], first
                await load(lambda: post("/bench/empty", body), 300, args.concurrency)  # warm-up
                await load(lambda: post("/admission/validate", body), 300, args.concurrency)
                # Rounds alternate, so a load change on the machine hits both alike.
                rounds = 5
                lat_e, lat_v = [], []
                took_e = took_v = cpu_e = cpu_v = 0.0
                pauses = GcPauses()
                gc.callbacks.append(pauses.seen)
                for _ in range(rounds):
                    cpu = time.process_time()
                    rps, lat = await load(
                        lambda: post("/bench/empty", body),
                        args.requests // rounds,
                        args.concurrency,
                    )
                    cpu_e += time.process_time() - cpu
                    took_e += len(lat) / rps
                    lat_e += lat
                    cpu = time.process_time()
                    rps, lat = await load(
                        lambda: post("/admission/validate", body),
                        args.requests // rounds,
                        args.concurrency,
                    )
                    cpu_v += time.process_time() - cpu
                    took_v += len(lat) / rps
                    lat_v += lat
                gc.callbacks.remove(pauses.seen)
                rps_e, rps_v = len(lat_e) / took_e, len(lat_v) / took_v
                lat_e.sort()
                lat_v.sort()
                print(
                    f"HTTPS + bearer token, concurrency {args.concurrency}, 5-container Pod, "
                    f"{rounds} alternating rounds:"
                )
                print(describe("empty handler", rps_e, lat_e))
                print(describe("validate (warm)", rps_v, lat_v))
                print(f"validate / empty handler throughput ratio: {rps_v / rps_e:.2f}")
                longest = max(pauses.ms, default=0.0)
                print(
                    f"garbage collector pauses during the rounds: {len(pauses.ms)}, "
                    f"{sum(pauses.ms):.0f} ms in all, the longest {longest:.1f} ms"
                )
                # CPU time (this process: server, client, the log's writer) per request: what a
                # loaded machine disturbs least.
                per_e, per_v = cpu_e / len(lat_e) * 1e6, cpu_v / len(lat_v) * 1e6
                print(
                    f"CPU per request: empty handler {per_e:.0f} us, validate {per_v:.0f} us "
                    f"({per_v - per_e:.0f} us beyond the empty handler), ratio {per_e / per_v:.2f}"
                )
                one_e = await load(lambda: post("/bench/empty", body), 1000, 1)
                one_v = await load(lambda: post("/admission/validate", body), 1000, 1)
                one_m = await load(lambda: post("/admission/mutate", body), 1000, 1)
                print("concurrency 1:")
                print(describe("empty handler", *one_e))
                print(describe("validate (warm)", *one_v))
                print(describe("mutate (warm)", *one_m))
                # The review alone, in process (no HTTP, TLS or client): what is ours of the
                # above, beside what one empty HTTPS request costs the same process.
                calls = 1000  # 5,000 decision rows a round: well within the log's capacity
                wall, cpu_time = [], []
                for _ in range(5):
                    started, cpu = time.perf_counter(), time.thread_time()
                    for n in range(calls):
                        answer = await admission.review(body, budget=BUDGET, mutate=False)
                        if n % 50 == 0:
                            await asyncio.sleep(0)  # the decision log's writer runs, as in serving
                    cpu_time.append((time.thread_time() - cpu) / calls * 1e6)
                    wall.append((time.perf_counter() - started) / calls * 1e6)
                    assert answer["response"]["allowed"], answer
                    await asyncio.sleep(0.3)  # the log drains between rounds
                print(
                    f"validate alone (in process, no HTTP), best of 5 x {calls}: "
                    f"{min(wall):.0f} us per review, {min(cpu_time):.0f} us of the event loop "
                    f"thread's CPU; an empty HTTPS request at concurrency 1: "
                    f"{1e6 / one_e[0]:.0f} us"
                )

                print(f"cold reviews, against the {BUDGET:g} s budget:")
                for tag, what in (
                    ("indexed-cold", "indexed, never verified"),
                    ("never-seen", "never seen: live"),
                ):
                    cold = review(
                        workload("Pod", tag, "shop", pod_spec([f"{reg.host}/shop/app:{tag}"]))
                    )
                    started = time.perf_counter()
                    answer = await post("/admission/validate", json.dumps(cold).encode())
                    took = time.perf_counter() - started
                    assert answer["response"]["allowed"], answer
                    print(
                        f"  {what:<26} {took * 1000:8.1f} ms  ({took / BUDGET:.1%} of the budget)"
                    )
        finally:
            await listener.stop()
            await service.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        asyncio.run(bench(args, Path(workdir)))


if __name__ == "__main__":
    main()
