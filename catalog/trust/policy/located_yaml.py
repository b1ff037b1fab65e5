"""YAML that remembers where each value came from, so policy errors can name their line.

PyYAML's ``safe_load`` forgets positions; its composed node tree keeps them. We compose with the
safe loader, build plain Python values ourselves and record, for every mapping key and sequence
item, the 1-based line it starts on. Duplicate keys are refused (PyYAML would silently keep the
last one, hiding a half-edited rule), and the size of the expanded document is bounded before it
is built (``yamlerrors.check_expansion``) so an alias bomb cannot stall a server that accepts
policies over its API.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml
from yaml.events import Event
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from catalog.trust.policy.errors import PolicyError, Problem, YamlPath
from catalog.yamlerrors import check_expansion, yaml_problem

MAX_TEXT = 1 << 20  # a policy set is hand-written configuration; 1 MiB is generous
MAX_NODES = 100_000  # values and keys after alias expansion
MAX_DEPTH = 64
_MERGE = "tag:yaml.org,2002:merge"


@dataclass(frozen=True, slots=True)
class LocatedDocument:
    data: Any
    lines: dict[YamlPath, int]
    source: str

    def line_of(self, path: YamlPath) -> int:
        """The line of ``path``, or of its nearest ancestor the document has (a missing key)."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return line
        return 1

    def problem(self, path: YamlPath, message: str) -> Problem:
        return Problem(self.source, self.line_of(path), path, message)


def load_located(text: str, source: str) -> LocatedDocument:
    """Parse one YAML document into plain values plus a path → line map."""
    if len(text) > MAX_TEXT:
        raise PolicyError([Problem(source, 1, (), f"larger than {MAX_TEXT} characters")])
    loader = _DepthCheckedLoader(text, source)
    try:
        node = loader.get_single_node()
        if node is None:
            raise PolicyError([Problem(source, 1, (), "empty document: expected a policy")])
        check_expansion(node, MAX_NODES)
        builder = _Builder(loader, source)
        data = builder.build(node, (), 0)
        return LocatedDocument(data, builder.lines, source)
    except yaml.YAMLError as exc:
        line, reason = yaml_problem(exc)
        raise PolicyError([Problem(source, line, (), reason)]) from None
    finally:
        loader.dispose()


class _DepthCheckedLoader(yaml.SafeLoader):
    """PyYAML's composer recurses once per nesting level, so ``[[[…]]]`` a few hundred deep
    raises RecursionError inside it; the depth is checked on each node's start event, before
    its children are composed. (The parser and scanner underneath do not recurse.)"""

    def __init__(self, text: str, source: str) -> None:
        super().__init__(text)
        self._source = source
        self._depth = 0

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH + 1:  # the top-level node is depth 0 to the builder
                event: Event = self.peek_event()  # type: ignore[no-untyped-call]
                line = event.start_mark.line + 1 if event.start_mark is not None else 1
                raise PolicyError(
                    [Problem(self._source, line, (), f"nested deeper than {MAX_DEPTH} levels")]
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


class _Builder:
    def __init__(self, loader: yaml.SafeLoader, source: str) -> None:
        self.loader = loader
        self.source = source
        self.lines: dict[YamlPath, int] = {}

    def _fail(self, node: Node, path: YamlPath, message: str) -> PolicyError:
        return PolicyError([Problem(self.source, node.start_mark.line + 1, path, message)])

    def build(self, node: Node, path: YamlPath, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise self._fail(node, path, f"nested deeper than {MAX_DEPTH} levels")
        if path not in self.lines:
            self.lines[path] = node.start_mark.line + 1
        if isinstance(node, ScalarNode):
            return self.loader.construct_object(node)
        if isinstance(node, SequenceNode):
            return [self.build(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        if isinstance(node, MappingNode):
            return self._mapping(node, path, depth)
        raise self._fail(node, path, f"unsupported YAML node {node.tag}")

    def _mapping(self, node: MappingNode, path: YamlPath, depth: int) -> dict[str, Any]:
        seen: dict[str, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE:
                continue  # ``<<``: what it brings in may be overridden by design
            key = self._key(key_node, path)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise self._fail(
                    key_node, (*path, key), f"duplicate key {key!r} (first at line {seen[key]})"
                )
            seen[key] = line
        # Resolves ``<<: *anchor`` merges into plain pairs, merged ones first (own keys win).
        self.loader.flatten_mapping(node)
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = self._key(key_node, path)
            child = (*path, key)
            # The key's line, not the value's: a nested block starts on the line after its key.
            self.lines[child] = key_node.start_mark.line + 1
            result[key] = self.build(value_node, child, depth + 1)
        return result

    def _key(self, node: Node, path: YamlPath) -> str:
        if not isinstance(node, ScalarNode):
            raise self._fail(node, path, "mapping keys must be plain strings")
        key = self.loader.construct_object(node)
        if not isinstance(key, str):
            raise self._fail(node, path, f"mapping key {key!r} must be a string")
        return key
