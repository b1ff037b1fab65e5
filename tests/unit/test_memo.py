"""catalog.memo.IdentityMemo: kept per object, never per equal value, and bounded."""

from __future__ import annotations

from catalog.memo import IdentityMemo
from catalog.trust.policy.facts import Decision


def decision() -> Decision:
    return Decision(True, "sha256:" + "a" * 64, "default", 1, "enforce", ())


def test_kept_per_object_not_per_equal_value() -> None:
    memo: IdentityMemo[Decision, str] = IdentityMemo()
    first, equal = decision(), decision()
    assert first == equal
    assert memo.put(first, "first") == "first"
    assert memo.get(first) == "first"
    assert memo.get(equal) is None


def test_an_entry_holds_its_key_so_its_id_is_never_anothers() -> None:
    memo: IdentityMemo[object, int] = IdentityMemo()
    for n in range(1_000):  # objects that die at once would reuse ids: held, they cannot
        memo.put(object(), n)
    assert all(memo.get(object()) is None for _ in range(1_000))


def test_past_its_bound_it_starts_again() -> None:
    memo: IdentityMemo[object, int] = IdentityMemo(most=3)
    keys = [object() for _ in range(4)]
    for n, key in enumerate(keys):
        memo.put(key, n)
    assert len(memo) == 1
    assert memo.get(keys[3]) == 3
    assert memo.get(keys[0]) is None
