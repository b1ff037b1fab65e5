"""The acting principal follows a call into threads and tasks, and never leaks to another call."""

from __future__ import annotations

import asyncio

from catalog.principals import LOCAL, Principal, PrincipalKind, acting_as, current


def test_the_default_is_the_local_user_and_acting_as_is_scoped() -> None:
    assert current() == LOCAL
    alice = Principal(PrincipalKind.TOKEN, "alice")
    with acting_as(alice):
        assert current() == alice
        assert str(current()) == "token:alice"
    assert current() == LOCAL


async def test_it_follows_threads_and_does_not_leak_between_calls() -> None:
    async def call(name: str) -> tuple[str, str]:
        with acting_as(Principal(PrincipalKind.OIDC, name)):
            await asyncio.sleep(0.01)  # the other call runs meanwhile
            in_thread = await asyncio.to_thread(lambda: current().name)
            return current().name, in_thread

    assert list(await asyncio.gather(call("a"), call("b"))) == [("a", "a"), ("b", "b")]
    assert current() == LOCAL
