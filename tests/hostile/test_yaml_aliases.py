"""An alias bomb ("billion laughs") in a YAML file a user or operator gives: a few hundred
kilobytes the loader shares as a few thousand nodes, and a hundred million values to whatever
walks the result (on the old code the serve config's validator ran out of memory, a traceback).
Refused on one line before it is built, in a process with 1 GiB of address space and a timeout.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from catalog.app.config import MAX_CONFIG_VALUES
from catalog.yamlerrors import ExpansionTooLarge, load_bounded, yaml_problem
from tests.harness.limited import run_limited


def config_bomb(times: int) -> str:
    """Each of ``times`` registries lists one repository ``times`` times: times² values."""
    repositories = ", ".join(["*repository"] * times)
    registries = ", ".join(["*registry"] * times)
    return (
        "x-anchors:\n"
        '  - &repository "library/busybox"\n'
        f'  - &registry {{name: r, host: "registry.example:5000",'
        f" repositories: [{repositories}]}}\n"
        f"registries: [{registries}]\n"
    )


def test_serve_refuses_an_alias_bomb_in_its_config_in_one_line(tmp_path: Path) -> None:
    bomb = tmp_path / "config.yaml"
    bomb.write_text(config_bomb(12_000))  # 144 million repositories from 288 KB
    serve = [sys.executable, "-m", "catalog.cli.main", "serve", "--config", str(bomb)]
    done = run_limited(serve, 60)
    assert (done.returncode, done.stdout) == (2, ""), done.stderr[-2000:]
    assert done.stderr == (
        f"xregistry: error: {bomb}:4: more than {MAX_CONFIG_VALUES} values once its aliases"
        " are expanded\n"
    )


def test_aliases_within_the_cap_still_work() -> None:
    loaded = load_bounded(config_bomb(10), cap=1_000)
    assert len(loaded["registries"]) == 10
    assert loaded["registries"][9]["repositories"] == ["library/busybox"] * 10
    with pytest.raises(ExpansionTooLarge):
        load_bounded(config_bomb(10), cap=100)


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("a: &a [1, *a]\n", 1, "an alias inside its own anchor"),
        # A chain of aliases as long as the file: walked without recursion.
        (
            "a0: &a0 [1]\n" + "".join(f"a{i}: &a{i} [*a{i - 1}]\n" for i in range(1, 5_000)),
            1,
            "more than 1000000 values once its aliases are expanded",
        ),
    ],
    ids=["endless", "long-chain"],
)
def test_endless_and_long_alias_chains_are_refused(text: str, line: int, reason: str) -> None:
    with pytest.raises(yaml.YAMLError) as refused:
        load_bounded(text, cap=1_000_000)
    assert yaml_problem(refused.value) == (line, reason)
