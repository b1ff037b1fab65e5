"""A real ``serve``-built server with its admission listener on HTTPS (certificates made now),
a real registry holding signed and unsigned images, indexed, and a client posting reviews as
the API server does (a bearer token bound to the gate role)."""

from __future__ import annotations

import base64
import hashlib
import json
import random
import ssl
import textwrap
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import jsonpatch
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from catalog.app.admission_config import AdmissionSettings
from catalog.app.auth_config import AuthSettings, Binding, Role, StaticToken
from catalog.app.config import RegistryConfig, ServeConfig
from catalog.daemon import Server
from catalog.oci.client import RegistryClient
from catalog.principals import SERVER, acting_as
from catalog.trust.policy.stored import Policies
from tests.api.peer import Pki, make_pki
from tests.harness.images import build_image
from tests.harness.registry import RunningRegistry
from tests.pushing import push_built
from tests.signing import public_pem, push_signature

TOKEN = "kube-apiserver-token-for-tests"
VIEWER_TOKEN = "a-viewer-token-for-tests"


def policy_source(host: str, key: ec.EllipticCurvePrivateKey, **extra: str) -> str:
    """``shop/**`` must be signed with ``key``; anything else is allowed with a warning."""
    namespaces = extra.get("namespaces", "")
    mode = extra.get("mode", "enforce")
    return textwrap.dedent(
        """\
        noMatch: allow
        policies:
          - name: shop-signed
            mode: {mode}
            images: ["{host}/shop/**"]
        {namespaces}    authorities:
              - name: release-key
                key:
                  pem: |
        {pem}
        """
    ).format(
        host=host,
        mode=mode,
        namespaces=textwrap.indent(namespaces, " " * 4),
        pem=textwrap.indent(public_pem(key), " " * 14),
    )


@dataclass
class Webhook:
    server: Server
    pki: Pki
    host: str  # the registry's
    key: ec.EllipticCurvePrivateKey
    digests: dict[str, str] = field(default_factory=dict)  # tag → digest

    def image(self, tag: str, repository: str = "shop/app") -> str:
        return f"{self.host}/{repository}:{tag}"

    def pinned(self, tag: str) -> str:
        return f"{self.host}/shop/app@{self.digests[tag]}"

    @property
    def url(self) -> str:
        listener = self.server.admission
        assert listener is not None
        return f"https://127.0.0.1:{listener.port}"

    def apply(self, source: str) -> None:
        with acting_as(SERVER):
            Policies(self.server.sessions, set()).apply("default", source)

    async def post(
        self,
        body: dict[str, Any] | bytes,
        path: str = "/admission/validate",
        *,
        budget: str | None = "10s",
        token: str | None = TOKEN,
    ) -> tuple[int, Any]:
        """(status, the AdmissionReview answered, or the error text)."""
        context = ssl.create_default_context(cadata=self.pki.ca.cert_pem.decode())
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        query = f"?timeout={budget}" if budget else ""
        async with (
            aiohttp.ClientSession() as session,
            session.post(self.url + path + query, data=data, headers=headers, ssl=context) as r,
        ):
            text = await r.text()
            return r.status, json.loads(text) if r.content_type == "application/json" else text

    async def answer(self, review: dict[str, Any], path: str = "/admission/validate") -> Any:
        status, answer = await self.post(review, path)
        assert status == 200, answer
        response = answer["response"]
        assert response["uid"] == review["request"]["uid"]
        assert answer["apiVersion"] == "admission.k8s.io/v1"
        assert answer["kind"] == "AdmissionReview"
        return response


def patched(obj: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    """``obj`` with the response's JSONPatch applied (by the jsonpatch library)."""
    if "patch" not in response:
        return obj
    assert response["patchType"] == "JSONPatch"
    operations = json.loads(base64.b64decode(response["patch"]))
    result: dict[str, Any] = jsonpatch.apply_patch(obj, operations)
    return result


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def config_for(
    tmp_path: Path, registry: RunningRegistry, pki: Pki, **admission: Any
) -> ServeConfig:
    return ServeConfig(
        database=f"sqlite:///{tmp_path / 'catalog.db'}",
        listen="127.0.0.1:0",
        registries=[RegistryConfig(name="local", host=registry.host)],
        auth=AuthSettings(
            tokens=[
                StaticToken(name="kube-apiserver", sha256=sha256_hex(TOKEN)),
                StaticToken(name="viewer", sha256=sha256_hex(VIEWER_TOKEN)),
            ],
            bindings=[
                Binding(role=Role.GATE, principals=["token:kube-apiserver"]),
                Binding(role=Role.VIEWER, principals=["token:viewer"]),
            ],
        ),
        admission=AdmissionSettings(listen="127.0.0.1:0", tls=pki.settings(), **admission),
    )


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path / "pki")


@pytest.fixture
def release_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
async def populated(
    fresh_registry: RunningRegistry, rng: random.Random, release_key: ec.EllipticCurvePrivateKey
) -> dict[str, str]:
    """shop/app: ``signed``, ``signed2`` (signed with the release key), ``unsigned``;
    tools/debug: ``1`` (no policy covers it). Tag → digest."""
    digests: dict[str, str] = {}
    async with RegistryClient(fresh_registry.host) as client:
        for tag in ("signed", "signed2", "unsigned"):
            image = build_image(rng, layers=1, layer_size=512)
            await push_built(client, "shop/app", image, tag)
            digests[tag] = image.digest
            if tag.startswith("signed"):
                await push_signature(client, "shop/app", image.digest, release_key)
        tool = build_image(rng, layers=1, layer_size=512)
        await push_built(client, "tools/debug", tool, "1")
        digests["debug"] = tool.digest
    return digests


ServeFactory = Callable[..., Any]


@pytest.fixture
async def serve(
    tmp_path: Path,
    fresh_registry: RunningRegistry,
    pki: Pki,
    populated: dict[str, str],
    release_key: ec.EllipticCurvePrivateKey,
) -> AsyncIterator[ServeFactory]:
    """``await serve(**admission settings)``: the server started, the registry indexed, the
    default policy applied."""
    started: list[Server] = []

    async def start(**admission: Any) -> Webhook:
        directory = tmp_path / f"server{len(started)}"
        directory.mkdir()
        config = config_for(directory, fresh_registry, pki, **admission)
        server = Server(config)
        await server.start()
        started.append(server)
        with acting_as(SERVER):
            await server.catalog.index("local")
        hook = Webhook(server, pki, fresh_registry.host, release_key, dict(populated))
        hook.apply(policy_source(fresh_registry.host, release_key))
        return hook

    yield start
    for server in started:
        await server.stop()


@pytest.fixture
async def webhook(serve: ServeFactory) -> Webhook:
    hook: Webhook = await serve()
    return hook
