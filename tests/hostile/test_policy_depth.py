"""A deeply nested policy YAML is refused with the documented "nested deeper than 64 levels",
before PyYAML's recursive composer builds it: never RecursionError, INTERNAL or a traceback."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from catalog.trust.policy.errors import PolicyError
from catalog.trust.policy.located_yaml import MAX_DEPTH, MAX_TEXT, load_located
from tests.cli.test_catalog_cli import run

DEEP = {
    # ``[[[…`` up to the size limit: the composer used to recurse once per bracket.
    "flow sequences": "[" * (MAX_TEXT - 1),
    "flow mappings": "{a: " * 50_000 + "1" + "}" * 50_000,
    "block sequences": "".join(" " * i + "-\n" for i in range(1_000)),
    "block mappings": "".join(" " * i + f"k{i}:\n" for i in range(1_000)),
}


@pytest.mark.timing
@pytest.mark.parametrize("text", DEEP.values(), ids=list(DEEP))
def test_deep_nesting_is_refused_before_composing(text: str) -> None:
    started = time.perf_counter()
    with pytest.raises(PolicyError) as refused:
        load_located(text, "policy.yaml")
    elapsed = time.perf_counter() - started
    assert elapsed < 2.0, f"took {elapsed:.2f} s"
    (line,) = str(refused.value).splitlines()
    assert line.startswith("policy.yaml:"), line
    assert line.endswith(f"nested deeper than {MAX_DEPTH} levels"), line


def test_the_limit_itself_is_accepted() -> None:
    data = load_located("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), "policy.yaml").data
    for _ in range(MAX_DEPTH):
        (data,) = data
    assert data == []
    with pytest.raises(PolicyError, match=f"nested deeper than {MAX_DEPTH} levels"):
        load_located("[" * (MAX_DEPTH + 2) + "]" * (MAX_DEPTH + 2), "policy.yaml")


def test_aliases_cannot_nest_past_the_limit() -> None:
    # Each level is shallow as written; the builder follows the aliases and counts.
    half = MAX_DEPTH // 2 + 1
    text = f"a: &x {'[' * half}1{']' * half}\nb: {'[' * half}*x{']' * half}\n"
    with pytest.raises(PolicyError, match=f"nested deeper than {MAX_DEPTH} levels"):
        load_located(text, "policy.yaml")


def test_the_cli_says_one_line_and_exits_2(tmp_path: Path) -> None:
    deep = tmp_path / "deep.yaml"
    deep.write_text("[" * 100_000)
    started = time.perf_counter()
    done = run("policy", "apply", str(deep), db=tmp_path / "catalog.db")
    elapsed = time.perf_counter() - started
    assert (done.returncode, done.stderr.strip()) == (
        2,
        f"xregistry: error: {deep}:1: nested deeper than {MAX_DEPTH} levels",
    ), done.stderr
    assert elapsed < 15, f"took {elapsed:.1f} s"  # mostly interpreter start-up
