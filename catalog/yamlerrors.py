"""PyYAML within bounds: its errors as one line (its own text adds the mark and a snippet on
lines of their own), and documents whose aliases would expand past a cap refused before they are
built ("billion laughs": a few kilobytes of anchors and aliases that name them are a few
hundred nodes to the loader, which shares them, and billions of values to whatever walks the
result, a validator or a policy builder)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, SequenceNode


class ExpansionTooLarge(yaml.MarkedYAMLError):
    """A document more than its cap of values once its aliases are expanded, or an alias inside
    its own anchor (endless)."""


def yaml_problem(exc: yaml.YAMLError) -> tuple[int, str]:
    """(line, ``not valid YAML: PROBLEM (CONTEXT)``): the 1-based line of the problem (1 when
    PyYAML gives none) and one line of at most 300 characters saying what is wrong."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        reason = exc.problem or exc.context or "malformed"
        if exc.problem and exc.context:
            reason = f"{exc.problem} ({exc.context})"
    else:  # a reader error (bytes that are not text): its text carries a position line too
        line, reason = 1, str(exc)
    prefix = "" if isinstance(exc, ExpansionTooLarge) else "not valid YAML: "
    return line, prefix + " ".join(reason.split())[:300]


def check_expansion(root: Node, cap: int) -> None:
    """Raise :class:`ExpansionTooLarge` when ``root`` is more than ``cap`` nodes (values and
    keys) with every alias expanded. Each node is walked once and its size remembered, without
    recursion (a chain of aliases may be as long as the file): the work is the size of the
    document as written, whatever it would expand to."""
    sizes: dict[int, int] = {}
    walking: list[tuple[Node, Iterator[Node]]] = [(root, _children(root))]
    totals = [1]  # beside ``walking``: each open node's size so far
    opened = {id(root)}
    while walking:
        node, children = walking[-1]
        child = next(children, None)
        if child is None:
            walking.pop()
            opened.discard(id(node))
            sizes[id(node)] = size = totals.pop()
            if totals:
                totals[-1] += size
                _within(totals[-1], cap, walking[-1][0])
        elif (known := sizes.get(id(child))) is not None:
            totals[-1] += known
            _within(totals[-1], cap, node)
        elif id(child) in opened:
            problem = "an alias inside its own anchor"
            raise ExpansionTooLarge(problem=problem, problem_mark=child.start_mark)
        else:
            opened.add(id(child))
            walking.append((child, _children(child)))
            totals.append(1)


def _children(node: Node) -> Iterator[Node]:
    if isinstance(node, SequenceNode):
        return iter(node.value)
    if isinstance(node, MappingNode):
        return (part for pair in node.value for part in pair)
    return iter(())


def _within(total: int, cap: int, node: Node) -> None:
    if total > cap:
        problem = f"more than {cap} values once its aliases are expanded"
        raise ExpansionTooLarge(problem=problem, problem_mark=node.start_mark)


def load_bounded(data: bytes | str, *, cap: int) -> Any:
    """``yaml.safe_load`` of one document of at most ``cap`` values with its aliases expanded.

    Raises yaml.YAMLError (:class:`ExpansionTooLarge` among them) or RecursionError (PyYAML
    composes nested collections recursively)."""
    loader = yaml.SafeLoader(data)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        check_expansion(node, cap)
        return loader.construct_document(node)
    finally:
        loader.dispose()
