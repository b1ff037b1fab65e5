"""The deploy gate end to end: real registry, real signatures, a real gRPC channel."""

from __future__ import annotations

import random
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import func, select

from catalog.api.v1 import catalog_pb2, catalog_pb2_grpc, gate_pb2, gate_pb2_grpc
from catalog.app.config import RegistryConfig, ServeConfig
from catalog.daemon import Server
from catalog.oci.client import RegistryClient
from catalog.store.models import DecisionRecord
from tests.gate.catalogs import signed_image_indexed
from tests.harness.images import build_image
from tests.harness.registry import RunningRegistry
from tests.index.conftest import SLSA_BUILDER, populate
from tests.pushing import push_built
from tests.signing import key_policy, push_signature

GateStub = gate_pb2_grpc.GateServiceStub


@pytest.fixture
async def served(fresh_registry: RunningRegistry, tmp_path: Path) -> AsyncIterator[Server]:
    config = ServeConfig(
        database=f"sqlite:///{tmp_path / 'catalog.db'}",
        listen="127.0.0.1:0",
        registries=[RegistryConfig(name="local", host=fresh_registry.host)],
    )
    service = Server(config)
    await service.start()
    yield service
    await service.stop()


async def _index(channel: grpc.aio.Channel) -> None:
    stub = catalog_pb2_grpc.CatalogServiceStub(channel)
    async for message in stub.IndexRegistry(
        catalog_pb2.IndexRegistryRequest(name="registries/local")
    ):
        last = message.progress
    assert last.done


async def test_gate_decides_with_evidence_and_follows_new_signatures(
    fresh_registry: RunningRegistry, served: Server, rng: random.Random
) -> None:
    host = fresh_registry.host
    release, other = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )
    images = {name: build_image(rng, layers=1, layer_size=1024) for name in "abcde"}
    async with RegistryClient(host) as client:
        for name, image in images.items():
            await push_built(client, "shop/app", image, name)
        await push_signature(client, "shop/app", images["a"].digest, release)  # the release key
        await push_signature(client, "shop/app", images["c"].digest, other)  # someone else
        await push_signature(client, "shop/app", images["d"].digest, release)
    async with RegistryClient(host) as client:  # retag d to e's unsigned content
        moved = await client.get_manifest("shop/app", "e")
        await client.put_manifest("shop/app", moved, "d")

    async with grpc.aio.insecure_channel(f"127.0.0.1:{served.port}") as channel:
        await _index(channel)
        gate = GateStub(channel)
        applied = await gate.ApplyPolicy(
            gate_pb2.ApplyPolicyRequest(
                policy=gate_pb2.Policy(name="policies/default", source=key_policy(host, release))
            )
        )
        assert applied.created
        assert applied.policy.version == 1

        async def check(tag: str) -> gate_pb2.Decision:
            answer = await gate.CheckImage(
                gate_pb2.CheckImageRequest(image=f"{host}/shop/app:{tag}")
            )
            return answer.decision

        allowed = await check("a")
        assert allowed.allowed, allowed.reasons
        assert allowed.digest == images["a"].digest
        assert [(e.rule, e.method) for e in allowed.evidence] == [
            ("authority release-key", gate_pb2.VERIFICATION_METHOD_KEY)
        ]
        assert allowed.mode == gate_pb2.POLICY_MODE_ENFORCE
        assert allowed.evidence[0].key_fingerprint

        unsigned = await check("b")
        assert not unsigned.allowed
        assert any("release-key" in r for r in unsigned.reasons)
        wrong = await check("c")
        assert not wrong.allowed
        retagged = await check("d")
        assert not retagged.allowed  # d's signature was for content the tag no longer names
        assert retagged.digest == images["e"].digest

        again = await check("a")
        assert again.cached
        assert again.allowed

        # A signature pushed later flips the decision once the catalog has indexed it.
        async with RegistryClient(host) as client:
            await push_signature(client, "shop/app", images["b"].digest, release)
        await _index(channel)
        flipped = await check("b")
        assert flipped.allowed, flipped.reasons
        assert not flipped.cached

        whatif = [
            m.decision
            async for m in gate.EvaluateCatalog(
                gate_pb2.EvaluateCatalogRequest(source=key_policy(host, other))
            )
        ]
        verdicts = {d.image.rsplit(":", 1)[1]: d.allowed for d in whatif}
        assert verdicts == {"a": False, "b": False, "c": True, "d": False, "e": False}

        with pytest.raises(grpc.aio.AioRpcError) as bad:
            await gate.ApplyPolicy(
                gate_pb2.ApplyPolicyRequest(
                    policy=gate_pb2.Policy(
                        name="policies/default", source="name: x\nthreshold: -1\n"
                    )
                )
            )
        assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert ":2:" in (bad.value.details() or "")

    served.gate.audit.flush()
    with served.sessions() as session:
        logged = session.scalar(select(func.count(DecisionRecord.id)))
        assert logged == 6  # every CheckImage, cached or not; what-ifs are not logged
        # Who asked: nobody authenticated on this development server, so anonymous.
        askers = session.scalars(select(DecisionRecord.principal).distinct()).all()
        assert askers == ["anonymous:anonymous"]


async def test_slsa_builder_policy_on_the_fixture(
    fresh_registry: RunningRegistry, served: Server, fixtures_dir: Path, rng: random.Random
) -> None:
    host = fresh_registry.host
    corpus = await populate(host, fixtures_dir, rng)
    policy = textwrap.dedent(
        """\
        name: slsa
        images: ["**"]
        authorities:
          - name: slsa-generator
            keyless:
              issuer: https://token.actions.githubusercontent.com
              subjectRegExp: https://github.com/slsa-framework/slsa-github-generator/.*
        threshold: 0
        attestations:
          - name: provenance
            predicateType: https://slsa.dev/provenance/v0.2
            conditions:
              builderId: {builder}
        """
    )
    async with grpc.aio.insecure_channel(f"127.0.0.1:{served.port}") as channel:
        await _index(channel)
        gate = GateStub(channel)
        image = f"{host}/slsa/app:v1"
        for name, builder, allowed in [
            ("policies/slsa-ok", SLSA_BUILDER, True),
            ("policies/slsa-other", "https://example.com/another-builder@v1", False),
        ]:
            await gate.ApplyPolicy(
                gate_pb2.ApplyPolicyRequest(
                    policy=gate_pb2.Policy(name=name, source=policy.format(builder=builder))
                )
            )
            answer = await gate.CheckImage(gate_pb2.CheckImageRequest(image=image, policy=name))
            decision = answer.decision
            assert decision.digest == corpus.slsa_index
            assert decision.allowed is allowed, decision.reasons
            if allowed:
                assert any(e.log_index for e in decision.evidence)
            else:
                assert any("builderId" in r for r in decision.reasons)


async def test_a_new_trust_configuration_re_verifies(
    fresh_registry: RunningRegistry, tmp_path: Path, rng: random.Random
) -> None:
    """Verifications are stored per trust version: another configuration verifies again, and a
    key the configuration drops no longer counts."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    from catalog.gate.checker import Gate
    from catalog.store.models import Verification
    from catalog.trust.roots import TrustConfig, public_key, sigstore_instance

    host = fresh_registry.host
    engine, sessions, _, key = await signed_image_indexed(host, rng, tmp_path / "trust.db")
    fingerprint_policy = textwrap.dedent(
        f"""\
        name: by-fingerprint
        images: ["**"]
        authorities:
          - name: release
            key:
              fingerprint: {_fingerprint(key)}
        """
    )
    pem_bytes = key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    production = TrustConfig(sigstore=(sigstore_instance("production"),))
    with_key = TrustConfig(
        sigstore=(sigstore_instance("production"),), keys=(public_key("release", pem_bytes),)
    )
    reference = f"{host}/shop/app:1.0"
    verdicts = []
    for trust in (with_key, production, with_key):
        gate = Gate(sessions, trust)
        result = await gate.check(reference, adhoc=gate.adhoc(fingerprint_policy), offline=True)
        verdicts.append(result.decision.allowed)
    assert verdicts == [True, False, True]
    with sessions() as session:
        rows = session.scalars(select(Verification)).all()
    assert {(r.trust_version, r.verified) for r in rows} == {
        (with_key.version, True),
        (production.version, False),
    }
    engine.dispose()


def _fingerprint(key: ec.EllipticCurvePrivateKey) -> str:
    import hashlib

    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()
