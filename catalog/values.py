"""Small immutable records written out by hand: equality, hash, repr, copy and pickling over
their ``_FIELDS``.

Not frozen dataclasses: the decorator's generated methods are compiled in every process that
imports them (~4M instructions each at a command's start; issue 16); not named tuples where a
record must not compare equal to, unpack or serialise as a plain tuple (a digest, credentials).
"""

from __future__ import annotations

from typing import Any, ClassVar


class Value:
    """A value built once and never changed: equality, hash and repr over ``_FIELDS``, set in
    ``__init__`` through :meth:`_set`."""

    __slots__ = ()
    _FIELDS: ClassVar[tuple[str, ...]] = ()

    def _key(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self._FIELDS)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented  # the other side may know (``mock.ANY``)
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._FIELDS)
        return f"{type(self).__name__}({fields})"

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __reduce__(self) -> tuple[type[Value], tuple[Any, ...]]:
        # copy, deepcopy and pickle rebuild through the constructor (``_FIELDS`` is in its
        # order), which checks what it is given: setting slots one by one is refused above.
        return type(self), self._key()

    def _set(self, **values: object) -> None:
        for name, value in values.items():
            object.__setattr__(self, name, value)
