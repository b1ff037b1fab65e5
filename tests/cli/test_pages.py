"""Lists read page after page the same way on the database and through a server: a server's
list answers one page at a time (``size`` and ``after`` as on the database), and the CLI's one
loop (catalog.cli.pages.items) reads them."""

from __future__ import annotations

from pathlib import Path

import pytest

from catalog.cli import hosts, pages
from catalog.cli.hosts import all_registries
from catalog.cli.pages import every_page, items
from catalog.cli.remote import RemoteCatalog
from catalog.errors import InvalidArgument
from catalog.store.views import Key, Page, RegistrySpec, RegistryView
from tests.cli.test_all_registries import catalog_of


def test_items_reads_pages_up_to_a_limit(tmp_path: Path) -> None:
    catalog = catalog_of(tmp_path / "catalog.db", 7)
    sizes: list[int] = []

    def fetch(size: int, after: Key | None) -> Page[RegistryView]:
        sizes.append(size)
        return catalog.list_registries(size, after)

    names = [v.name for v in items(fetch, limit=5, page=3)]
    assert names == [f"r{n:04d}" for n in range(5)]
    assert sizes == [3, 2]  # the last page asks only for what the limit leaves
    assert len(list(items(catalog.list_registries, page=3))) == 7


def test_a_catalog_past_registries_max_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog = catalog_of(tmp_path / "catalog.db", 4)
    monkeypatch.setattr(hosts, "REGISTRIES_MAX", 4)
    assert len(all_registries(catalog, page=3)) == 4
    monkeypatch.setattr(hosts, "REGISTRIES_MAX", 3)  # a server paging on and on is cut off
    with pytest.raises(InvalidArgument, match="more than 3 registries"):
        all_registries(catalog, page=3)


def test_a_servers_registries_come_a_page_at_a_time(server: str) -> None:
    remote = RemoteCatalog(server)
    for n in range(4):
        remote.add_registry(RegistrySpec(f"extra-{n}", f"extra-{n}.example:5000"))
    first = remote.list_registries(2)
    assert [v.name for v in first.items] == ["extra-0", "extra-1"]
    assert first.next_after == ("extra-1",)
    second = remote.list_registries(2, first.next_after)
    assert [v.name for v in second.items] == ["extra-2", "extra-3"]
    last = remote.list_registries(2, second.next_after)
    assert [v.name for v in last.items] == ["local"]  # the one of the server's config
    assert last.next_after is None
    assert [v.name for v in all_registries(remote, page=3)] == [
        *(f"extra-{n}" for n in range(4)),
        "local",
    ]
    # A key no page here ended with cannot become the server's (signed) page token.
    with pytest.raises(InvalidArgument, match="continues only after a page read before"):
        remote.list_registries(2, ("extra-0",))


def test_a_server_that_never_stops_paging_is_cut_off(monkeypatch: pytest.MonkeyPatch) -> None:
    # Empty pages with a next token, or full ones: either way the loop ends, with an error.
    monkeypatch.setattr(pages, "LISTED_MAX", 10)

    def empty(token: str) -> tuple[list[int], str]:
        return [], "more"

    def full(token: str) -> tuple[list[int], str]:
        return [1, 2, 3], "more"

    for fetch in (empty, full):
        with pytest.raises(InvalidArgument, match="more than 10 rules"):
            every_page(fetch, "rules")
    assert every_page(lambda token: ([1, 2], "" if token else "next"), "rules") == [1, 2, 1, 2]


def test_items_stops_after_listed_max_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    # Pages whose items the reader dropped, each with a key to go on after: cut off, not endless.
    monkeypatch.setattr(pages, "LISTED_MAX", 10)
    asked: list[Key | None] = []

    def fetch(size: int, after: Key | None) -> Page[int]:
        asked.append(after)
        return Page([], (len(asked),))

    with pytest.raises(InvalidArgument, match="more than 10 tags"):
        list(items(fetch, limit=5, what="tags"))
    assert len(asked) == 10
