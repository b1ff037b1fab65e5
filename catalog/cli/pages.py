"""Lists read page after page, on the database or through a server, the same way.

:func:`items` is the one loop over the pages of a list; :class:`TokensByKey` lets a server's
list answer pages as the store does (a page ends with a key to continue after), though the
server continues only from the opaque token it gave.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, TypeVar

from catalog.errors import InvalidArgument

if TYPE_CHECKING:  # replicate once pages through hosts and may not import the store
    from catalog.store.views import Key, Page

T = TypeVar("T")
PAGE_MAX = 1000  # items a page holds at most (catalog.store.queries.MAX_PAGE_SIZE)


LISTED_MAX = 100_000  # items, or pages, a command reads from one of a server's lists at most


def _turns(what: str) -> Iterator[None]:
    """One turn per page read, LISTED_MAX at most; then an error: a server that never stops
    paging (pages of items the command drops, empty pages with a token) is cut off."""
    for _ in range(LISTED_MAX):
        yield None
    raise _too_many(what)


def _too_many(what: str) -> InvalidArgument:
    return InvalidArgument(f"the server lists more than {LISTED_MAX} {what}")


def items(
    fetch: Callable[[int, Key | None], Page[T]],
    limit: int | None = None,
    page: int = PAGE_MAX,
    what: str = "items",
) -> Iterator[T]:
    """The items of every page in order (``fetch(size, after)`` reads one), up to ``limit``;
    past LISTED_MAX pages, an error naming ``what``."""
    after: Key | None = None
    left = limit
    for _ in _turns(what):
        if left is not None and left <= 0:
            return
        got = fetch(page if left is None else min(page, left), after)
        yield from got.items[:left]
        if left is not None:
            left -= len(got.items)
        if got.next_after is None:
            return
        after = got.next_after


def every_page(fetch: Callable[[str], tuple[Sequence[T], str]], what: str) -> list[T]:
    """Every item of a server's list, page token after page token (``fetch(token)`` reads a
    page and the token of the next, "" at the end); past LISTED_MAX items or pages, an error."""
    found: list[T] = []
    token = ""
    for _ in _turns(what):
        got, token = fetch(token)
        found += got
        if len(found) > LISTED_MAX:
            raise _too_many(what)
        if not token:
            break
    return found


class TokensByKey:
    """The server's page tokens are opaque: the token that continues after each page read here,
    by the key of that page's last item (in a ``scope``: one list and its filters)."""

    def __init__(self) -> None:
        self._tokens: dict[tuple[object, Key], str] = {}

    def token(self, scope: object, after: Key | None) -> str:
        """The token for the page after ``after`` ("" for the first page)."""
        if after is None:
            return ""
        token = self.known(scope, after)
        if token is None:
            raise InvalidArgument("a server's list continues only after a page read before")
        return token

    def known(self, scope: object, after: Key) -> str | None:
        """The token for the page after ``after`` when a page read here ended with it."""
        return self._tokens.get((scope, after))

    def page(
        self, scope: object, found: Sequence[T], key: Callable[[T], Key], next_token: str
    ) -> Page[T]:
        """``found`` as a page ending at its last item's ``key`` when ``next_token`` says more
        follow."""
        # Imported here: replicate once imports this module and may not import the store.
        from catalog.store.views import Page

        if not next_token or not found:
            return Page(list(found), None)
        last = key(found[-1])
        self._tokens[(scope, last)] = next_token
        return Page(list(found), last)
