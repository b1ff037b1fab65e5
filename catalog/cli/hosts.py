"""A host as the catalog knows it: ``127.0.0.1:5000`` and ``localhost:5000`` are one registry.

The catalog stores a registry under the host it was added with; a reference may spell that host
another way. These helpers find the registry a host means (the same text first, then the same
resolved addresses and port), for the commands that look a reference up in the catalog.
"""

from __future__ import annotations

import functools
import socket
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, TypeVar

from catalog.cli.pages import PAGE_MAX, items
from catalog.errors import InvalidArgument, NotFound
from catalog.oci.errors import InvalidReference
from catalog.oci.reference import ImageReference, parse_image_reference

if TYPE_CHECKING:
    from catalog.cli.context import Reader
    from catalog.store.views import RegistryView

T = TypeVar("T")
_ADDRESS_LIMIT = 16  # addresses looked at per name: enough for any real host
REGISTRIES_MAX = 100_000  # registries a command holds at most


def all_registries(catalog: Reader, page: int = PAGE_MAX) -> list[RegistryView]:
    """Every registry of the catalog, page after page (one page would miss the 1,001st); past
    REGISTRIES_MAX (a server that never stops paging) an error."""
    found = list(items(catalog.list_registries, REGISTRIES_MAX + 1, page, "registries"))
    if len(found) > REGISTRIES_MAX:
        raise InvalidArgument(f"the catalog has more than {REGISTRIES_MAX} registries")
    return found


def _split(host: str) -> tuple[str, str]:
    if host.startswith("["):
        name, _, rest = host[1:].partition("]")
        return name, rest.removeprefix(":")
    name, _, port = host.partition(":")
    return name, port


@functools.cache  # one lookup per name per command, however many registries are compared
def _addresses(name: str) -> frozenset[str]:
    try:
        found = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return frozenset()
    return frozenset(str(info[4][0]) for info in found[:_ADDRESS_LIMIT])


def same_host(a: str, b: str) -> bool:
    """Whether ``host[:port]`` ``a`` and ``b`` reach the same place: equal text, or the same
    port and names that resolve to a common address."""
    if a.lower() == b.lower():
        return True
    (name_a, port_a), (name_b, port_b) = _split(a), _split(b)
    if port_a != port_b or a.startswith("oci:") or b.startswith("oci:"):
        return False
    return bool(_addresses(name_a) & _addresses(name_b))


def registry_of_host(registries: Iterable[RegistryView], host: str) -> RegistryView | None:
    """The registry ``host`` means: stored with that very host, else with another spelling of
    the same address."""
    views = list(registries)
    for view in views:
        if view.host == host:
            return view
    return next((v for v in views if same_host(v.host, host)), None)


def catalog_registry(catalog: Reader, host: str) -> RegistryView:
    """The registry of ``catalog`` that ``host`` means (:func:`registry_of_host`)."""
    view = registry_of_host(all_registries(catalog), host)
    if view is None:
        raise NotFound(
            f"no registry with host {host} in the catalog (see `xregistry registry list`)"
        )
    return view


def respelled(registries: Iterable[RegistryView], reference: str) -> str | None:
    """``reference`` with its host as the catalog stores it, when the catalog knows that host
    under another spelling; None when it does not (or the reference names no registry host)."""
    try:
        parsed = parse_image_reference(reference)
    except InvalidReference:
        return None
    view = registry_of_host(registries, parsed.registry)
    if view is None or view.host == parsed.registry:
        return None
    return str(ImageReference(view.host, parsed.repository, parsed.tag, parsed.digest))


def by_catalog_host(
    lookup: Callable[[str], T], registries: Callable[[], Iterable[RegistryView]], reference: str
) -> T:
    """``lookup(reference)``; when the catalog has nothing under that spelling of the host but
    knows the host as another, the lookup again with the catalog's spelling."""
    try:
        return lookup(reference)
    except NotFound:
        other = respelled(registries(), reference)
        if other is None:
            raise
        return lookup(other)


def registered_name_hint(host: str, path: str) -> str:
    """What to tell whoever named ``host`` where a registry's name in the catalog belongs (a
    stored rule's ends): that name, when the catalog knows the host, or how to add it."""
    import click

    from catalog.cli.context import open_reader

    catalog = open_reader(click.get_current_context())
    view = registry_of_host(all_registries(catalog), host)
    if view is not None:
        rest = f"/{path}" if path else ""
        return f"{host} is registry {view.name!r} of the catalog: write {view.name}{rest}"
    return (
        "name a registry of the catalog (see `xregistry registry list`), not a host; add it "
        f"first with `xregistry registry add NAME {host}`"
    )
