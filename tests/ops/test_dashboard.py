"""The Grafana dashboard (deploy/grafana/xregistry.json) queries only metrics catalog/metrics.py
defines, and shows every one of them."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from catalog import metrics

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "xregistry.json"
_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def expressions(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "expr" and isinstance(value, str):
                yield value
            else:
                yield from expressions(value)
    elif isinstance(node, list):
        for value in node:
            yield from expressions(value)


def defined() -> dict[str, str]:
    """Every series name the process exports of an xregistry_* family → that family."""
    names = {}
    for family in metrics.enable("test").collect():
        if family.name.startswith("xregistry_"):
            for suffix in _SUFFIXES[family.type]:
                names[family.name + suffix] = family.name
    return names


def test_the_dashboard_queries_only_defined_metrics_and_all_of_them() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "xregistry"
    queries = list(expressions(dashboard))
    assert len(queries) >= 20
    used = {name for query in queries for name in re.findall(r"\bxregistry_\w+", query)}
    series = defined()
    assert sorted(used - set(series)) == [], "queried but not defined in catalog/metrics.py"
    shown = {series[name] for name in used}
    assert sorted(set(series.values()) - shown) == [], "defined but not on the dashboard"


def test_every_panel_has_a_query_and_a_unique_id() -> None:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    for panel in panels:
        if panel["type"] != "row":
            assert panel["targets"], panel["title"]
