"""catalog.memo: IdentityMemo kept per object, never per equal value, and bounded; short_key_cache
keeping short keys only, the SBOM decoder's purls among them."""

from __future__ import annotations

from catalog.formats import packages
from catalog.memo import IdentityMemo, short_key_cache
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


def test_a_short_key_cache_keeps_short_keys_only() -> None:
    calls: list[tuple[str, ...]] = []

    def joined(key: tuple[str, ...]) -> str:
        calls.append(key)
        return "+".join(key)

    cache, kept = short_key_cache(joined, most=8, longest=6, size=lambda key: sum(map(len, key)))
    assert cache(("ab", "cd")) == cache(("ab", "cd")) == "ab+cd"  # 4 characters: kept
    assert cache(("abcd", "efg")) == cache(("abcd", "efg")) == "abcd+efg"  # 7: worked out twice
    assert calls == [("ab", "cd"), ("abcd", "efg"), ("abcd", "efg")]
    assert kept.cache_info().currsize == 1


def test_the_sbom_decoders_purls_are_parsed_whatever_their_length_and_kept_when_short() -> None:
    long = "pkg:npm/" + "a" * 70_000 + "@1.0.0"
    packages._parsed_cache.cache_clear()  # other tests may have filled it
    before = 0
    assert packages.package(long, None, None, (), None, None).name == "a" * 70_000
    assert packages._parsed_cache.cache_info().currsize == before
    short = "pkg:npm/test-memo-short-purl@2.0.0"  # in no other test
    assert packages.package(short, None, None, (), None, None).version == "2.0.0"
    assert packages._parsed_cache.cache_info().currsize == before + 1
