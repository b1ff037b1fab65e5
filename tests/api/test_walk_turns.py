"""Turns to walk the catalog, with real tasks: one caller's evaluations never fill the server's
turns, the anonymous principal of a development server is not one caller, and a caller leaves
nothing behind (the servicer's use: tests/gate/test_evaluate_cancel.py)."""

from __future__ import annotations

import asyncio

from catalog.api.walk_turns import WalkTurns
from catalog.principals import ANONYMOUS, Principal, PrincipalKind

A = Principal(PrincipalKind.TOKEN, "a")
B = Principal(PrincipalKind.TOKEN, "b")


class Walks:
    """Walks that, once they have their turns, run until released."""

    def __init__(self, turns: WalkTurns) -> None:
        self.turns = turns
        self.walking: list[str] = []
        self.release = asyncio.Event()

    async def walk(self, principal: Principal, name: str) -> None:
        async with self.turns.held(principal):
            self.walking.append(name)
            await self.release.wait()

    def start(self, principal: Principal, name: str) -> asyncio.Task[None]:
        return asyncio.ensure_future(self.walk(principal, name))


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


async def test_one_callers_walks_take_one_turn_and_others_walk_beside() -> None:
    walks = Walks(WalkTurns(2))
    tasks = [walks.start(A, f"a{i}") for i in range(5)]
    await settle()
    assert walks.walking == ["a0"]  # its others wait for its own turn, not the server's
    tasks.append(walks.start(B, "b0"))
    await settle()
    assert walks.walking == ["a0", "b0"]
    tasks.append(walks.start(B, "b1"))
    await settle()
    assert walks.walking == ["a0", "b0"]  # two walk: the server's turns are taken
    walks.release.set()
    await asyncio.gather(*tasks)
    assert sorted(walks.walking) == ["a0", "a1", "a2", "a3", "a4", "b0", "b1"]
    assert walks.turns.callers() == 0


async def test_anonymous_callers_share_only_the_servers_turns() -> None:
    walks = Walks(WalkTurns(2))
    tasks = [walks.start(ANONYMOUS, f"n{i}") for i in range(3)]
    await settle()
    assert walks.walking == ["n0", "n1"]
    walks.release.set()
    await asyncio.gather(*tasks)
    assert walks.turns.callers() == 0


async def test_a_walk_cancelled_while_it_waits_gives_back_what_it_held() -> None:
    walks = Walks(WalkTurns(1))
    running = walks.start(A, "a0")
    waiting_own = walks.start(A, "a1")  # waits for its caller's turn
    waiting_server = walks.start(B, "b0")  # waits for the server's
    await settle()
    assert walks.turns.callers() == 2
    waiting_own.cancel()
    waiting_server.cancel()
    await settle()
    assert walks.turns.callers() == 1  # b's gone; a's one walk remains
    walks.release.set()
    await running
    later = walks.start(B, "b1")
    await later
    assert walks.walking == ["a0", "b1"]
    assert walks.turns.callers() == 0
