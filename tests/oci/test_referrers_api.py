"""The referrers API path. Distribution 2.8 has no referrers API, so the fault proxy answers the
``/referrers/`` endpoint the way distribution-spec 1.1 says a registry does, in front of the real
registry that holds the manifests."""

from __future__ import annotations

import json
import random

import pytest

from catalog.oci import _referrers
from catalog.oci import mediatypes as mt
from catalog.oci.digest import Digest
from catalog.oci.errors import BadResponse
from tests.conftest import ClientFactory
from tests.harness.faultproxy import FaultProxy
from tests.harness.images import build_image
from tests.pushing import push_built


def descriptor(n: int, artifact_type: str) -> dict[str, object]:
    return {
        "mediaType": mt.OCI_MANIFEST,
        "digest": str(Digest.of(str(n).encode())),
        "size": 100 + n,
        "artifactType": artifact_type,
        "annotations": {"n": str(n)},
    }


def index(*descriptors: dict[str, object]) -> bytes:
    return json.dumps(
        {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": list(descriptors)}
    ).encode()


async def test_referrers_api_pages_and_filters(
    proxy: FaultProxy, make_client: ClientFactory, rng: random.Random
) -> None:
    client = make_client(proxy.host)
    subject = await push_built(client, "api/app", build_image(rng, layers=1), "v1")
    path = f"/v2/api/app/referrers/{subject.digest}"
    headers = {"Content-Type": mt.OCI_INDEX}
    proxy.fail(
        1,
        200,
        headers={**headers, "Link": f'<{path}?page=2>; rel="next"'},
        body=index(descriptor(1, "application/a"), descriptor(2, "application/b")),
        match="/referrers/",
    )
    proxy.fail(
        1, 200, headers=headers, body=index(descriptor(3, "application/a")), match="/referrers/"
    )
    found = await client.referrers("api/app", subject.digest)
    assert found.scheme == "referrers-api"
    assert client.has_referrers_api is True
    assert [d.annotations["n"] for d in found.descriptors] == ["1", "2", "3"]

    # The registry did not filter (no OCI-Filters-Applied): the client filters.
    proxy.fail(
        1,
        200,
        headers=headers,
        body=index(descriptor(1, "application/a"), descriptor(2, "application/b")),
        match="/referrers/",
    )
    only_a = await client.referrers("api/app", subject.digest, "application/a")
    assert [d.annotations["n"] for d in only_a.descriptors] == ["1"]

    # The registry filtered and said so: its answer is taken as it is.
    proxy.fail(
        1,
        200,
        headers={**headers, "OCI-Filters-Applied": "artifactType"},
        body=index(descriptor(4, "application/b")),
        match="/referrers/",
    )
    only_b = await client.referrers("api/app", subject.digest, "application/b")
    assert [d.annotations["n"] for d in only_b.descriptors] == ["4"]
    assert proxy.pending() == 0
    queries = [e.query for e in proxy.events if "/referrers/" in e.path]
    assert queries == ["", "page=2", "artifactType=application/a", "artifactType=application/b"]


async def test_referrers_across_pages_are_bounded(
    proxy: FaultProxy,
    make_client: ClientFactory,
    rng: random.Random,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each page is capped in bytes, but a registry may page on: what they list together is
    capped too, not only the number of pages."""
    monkeypatch.setattr(_referrers, "MAX_REFERRERS", 5)
    client = make_client(proxy.host)
    subject = await push_built(client, "api/app", build_image(rng, layers=1), "v1")
    path = f"/v2/api/app/referrers/{subject.digest}"
    for page in range(10):  # pages that never end
        proxy.fail(
            1,
            200,
            headers={"Content-Type": mt.OCI_INDEX, "Link": f'<{path}?page={page + 2}>; rel="next"'},
            body=index(descriptor(2 * page, "application/a"), descriptor(2 * page + 1, "b/b")),
            match="/referrers/",
        )
    with pytest.raises(BadResponse, match="more than 5 referrers of"):
        await client.referrers("api/app", subject.digest)
    assert len([e for e in proxy.events if "/referrers/" in e.path]) == 3  # 6 listed: refused


async def test_a_404_referrers_endpoint_falls_back_once_then_sticks(
    proxy: FaultProxy, make_client: ClientFactory, rng: random.Random
) -> None:
    client = make_client(proxy.host)
    subject = await push_built(client, "api/fallback", build_image(rng, layers=1), "v1")
    for _ in range(3):
        found = await client.referrers("api/fallback", subject.digest)
        assert found.scheme == "fallback-tag"
    # Distribution answers 404 on the endpoint; after the first, the client stops asking.
    assert proxy.count("GET", "/referrers/") == 1


async def test_blob_download_resumes_with_range_after_a_stall(
    proxy: FaultProxy, make_client: ClientFactory, rng: random.Random
) -> None:
    client = make_client(proxy.host, read_timeout=0.5)
    image = await push_built(client, "api/blob", build_image(rng, layers=1, layer_size=2_000_000))
    layer = image.layers[0]
    proxy.hang(1, 5.0, match="/blobs/", method="GET", after_headers=True)
    data = await client.get_blob("api/blob", layer.digest, layer.size)
    assert Digest.of(data) == layer.digest
    assert proxy.count("GET", "/blobs/") == 2
