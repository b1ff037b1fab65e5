"""PyYAML's errors as one line: its own text adds the mark and a snippet on lines of their own."""

from __future__ import annotations

import yaml


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
    return line, "not valid YAML: " + " ".join(reason.split())[:300]
