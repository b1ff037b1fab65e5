"""Page sizes and page tokens: round trips, tampering, filters that change between pages."""

from __future__ import annotations

import base64
import json
from typing import Any

import grpc
import grpc.aio
import pytest

from catalog.api import names
from catalog.api.paging import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    Cursor,
    PageTokens,
    Weigher,
    encoded_size,
    page_size,
)
from catalog.api.v1 import catalog_pb2, catalog_pb2_grpc
from catalog.errors import InvalidArgument
from catalog.store.queries import bounded_page
from tests.api.conftest import Serve

REPO = names.repository_name("acme", "shop/api")
KEY = b"k" * 32


def list_tags(**fields: Any) -> catalog_pb2.ListTagsRequest:
    return catalog_pb2.ListTagsRequest(parent=REPO, **fields)


def test_page_size() -> None:
    assert page_size(0) == DEFAULT_PAGE_SIZE
    assert page_size(7) == 7
    assert page_size(MAX_PAGE_SIZE + 1) == MAX_PAGE_SIZE
    assert page_size(0, default=10, maximum=20) == 10
    with pytest.raises(InvalidArgument, match="page_size"):
        page_size(-1)


@pytest.mark.parametrize(
    "cursor",
    [
        Cursor(),
        Cursor(offset=120),
        Cursor(after=("1.4",)),
        Cursor(after=(1700000000123456, 42, None, True)),
    ],
)
def test_tokens_round_trip(cursor: Cursor) -> None:
    tokens = PageTokens(KEY)
    token = tokens.encode(list_tags(show_gone=True), cursor)
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    # page_size may change from page to page; every other field must stay.
    assert tokens.decode(list_tags(show_gone=True, page_size=5, page_token=token)) == cursor
    # Another codec with the same key (another replica) accepts it.
    assert PageTokens(KEY).decode(list_tags(show_gone=True, page_token=token)) == cursor


def test_no_token_is_the_first_page() -> None:
    assert PageTokens(KEY).decode(list_tags()) == Cursor()


@pytest.mark.parametrize(
    "changed",
    [
        list_tags(show_gone=False),
        catalog_pb2.ListTagsRequest(
            parent=names.repository_name("acme", "shop/web"), show_gone=True
        ),
    ],
)
def test_tokens_refuse_another_filter(changed: catalog_pb2.ListTagsRequest) -> None:
    tokens = PageTokens(KEY)
    token = tokens.encode(list_tags(show_gone=True), Cursor(offset=3))
    changed.page_token = token
    with pytest.raises(InvalidArgument, match="different request"):
        tokens.decode(changed)


def test_tokens_refuse_another_method() -> None:
    tokens = PageTokens(KEY)
    token = tokens.encode(catalog_pb2.ListRepositoriesRequest(parent=REPO), Cursor(offset=3))
    with pytest.raises(InvalidArgument, match="different request"):
        tokens.decode(catalog_pb2.ListTagEventsRequest(parent=REPO, page_token=token))


def tampered_tokens(token: str) -> list[str]:
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    body = json.loads(raw[17:])
    body["o"] = 1_000_000
    forged = raw[:17] + json.dumps(body, separators=(",", ":")).encode()
    flipped = raw[:-2] + bytes([raw[-2] ^ 1]) + raw[-1:]
    return [
        base64.urlsafe_b64encode(forged).rstrip(b"=").decode(),
        base64.urlsafe_b64encode(flipped).rstrip(b"=").decode(),
        token[:-4],
        token + "!",  # the base64 module alone would ignore it
        token + "A" * 5000,
        token + "AA",
        "not a token!",
        "AQ",
        base64.urlsafe_b64encode(b"\x02" + raw[1:]).decode(),  # unknown version
    ]


def test_tokens_refuse_tampering_and_garbage() -> None:
    tokens = PageTokens(KEY)
    token = tokens.encode(list_tags(), Cursor(offset=3))
    for bad in tampered_tokens(token):
        with pytest.raises(InvalidArgument, match="not a valid page token"):
            tokens.decode(list_tags(page_token=bad))
    with pytest.raises(InvalidArgument, match="not a valid page token"):
        PageTokens(b"another key, 16+ bytes").decode(list_tags(page_token=token))


def test_keys_and_cursors_are_checked() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        PageTokens(b"short")
    with pytest.raises(TypeError):
        PageTokens(KEY).encode(list_tags(), Cursor(after=(1.5,)))  # type: ignore[arg-type]
    assert PageTokens.random().decode(list_tags()) == Cursor()


# Through the real server: a servicer pages an in-memory tag list with keyset cursors.

TAGS = [
    ("1.0", False),
    ("1.1", True),
    ("1.2", False),
    ("1.3", False),
    ("1.4", True),
    ("2.0", False),
    ("latest", False),
]


class Tags(catalog_pb2_grpc.CatalogServiceServicer):
    def __init__(self) -> None:
        self.tokens = PageTokens.random()

    async def ListTags(
        self, request: catalog_pb2.ListTagsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> catalog_pb2.ListTagsResponse:
        registry_id, path = names.parse_repository_name(request.parent)
        cursor = self.tokens.decode(request)
        size = page_size(request.page_size, default=2)
        after = str(cursor.after[0]) if cursor.after else ""
        rows = [t for t, gone in TAGS if t > after and (request.show_gone or not gone)][: size + 1]
        next_token = ""
        if len(rows) > size:
            rows = rows[:size]
            next_token = self.tokens.encode(request, Cursor(after=(rows[-1],)))
        return catalog_pb2.ListTagsResponse(
            tags=[catalog_pb2.Tag(name=names.tag_name(registry_id, path, t), tag=t) for t in rows],
            next_page_token=next_token,
        )


async def test_paging_through_the_server(serve: Serve) -> None:
    async with serve(Tags) as (_, channel):
        stub = catalog_pb2_grpc.CatalogServiceStub(channel)
        for show_gone, page_sizes in ((False, [0, 3, 1, 5]), (True, [3, 3, 3])):
            seen: list[str] = []
            token = ""
            for size in page_sizes:
                page = await stub.ListTags(
                    list_tags(show_gone=show_gone, page_size=size, page_token=token)
                )
                seen += [t.tag for t in page.tags]
                token = page.next_page_token
                if not token:
                    break
            assert token == ""
            assert seen == [t for t, gone in TAGS if show_gone or not gone]

        first = await stub.ListTags(list_tags(page_size=2))
        assert first.next_page_token
        for request in (
            list_tags(show_gone=True, page_token=first.next_page_token),
            list_tags(page_token=first.next_page_token[:-3]),
            list_tags(page_size=-1),
            catalog_pb2.ListTagsRequest(parent="registries/acme/repositories/shop/api"),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.ListTags(request)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, request


def test_keys_are_checked_part_by_part() -> None:
    tokens = PageTokens(KEY)
    request = list_tags()
    request.page_token = tokens.next(request, ("1.4", 42))
    assert tokens.after(request, str, int) == ("1.4", 42)
    for kinds in ((int, int), (str,), (str, int, int), (str, str)):
        with pytest.raises(InvalidArgument, match="not a valid page token"):
            tokens.after(request, *kinds)
    request.page_token = tokens.next(request, (True,))  # a bool is no id
    with pytest.raises(InvalidArgument, match="not a valid page token"):
        tokens.after(request, int)
    assert tokens.next(request, None) == ""
    assert tokens.after(list_tags(), str, int) is None


def test_a_weighed_page_is_converted_once() -> None:
    """The messages weighed for the byte budget are the answer's: each item converted once (the
    item weighed and left for the next page aside), and an item not weighed still converted."""
    converted: list[str] = []

    def convert(name: str) -> catalog_pb2.Tag:
        converted.append(name)
        return catalog_pb2.Tag(name=name)

    names_ = [f"tag-{n}" for n in range(5)]
    weigher = Weigher(convert, limit=3 * encoded_size(catalog_pb2.Tag(name="tag-0")))
    page = bounded_page(((name, (name,)) for name in names_), 10, weigher.budget)
    assert page.items == names_[:3]
    assert page.next_after == ("tag-2",)
    assert converted == names_[:4]  # three taken, the fourth weighed and left
    messages = weigher.messages(page.items)
    assert [m.name for m in messages] == names_[:3]
    assert converted == names_[:4]
    assert [m.name for m in weigher.messages(["other"])] == ["other"]
