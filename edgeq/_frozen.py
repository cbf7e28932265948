"""Frozen value classes that cost nothing to define at import.

``@dataclass(frozen=True)`` compiles its generated methods with ``exec`` every time its module is
imported: on ``edgeq run`` that was about 40 % of the instructions edgeq adds to a bare interpreter
script. :class:`Frozen` gives the classes on that path the same value semantics -- equality, hashing,
``repr`` and immutability (assignment raises :class:`dataclasses.FrozenInstanceError`) -- from methods
compiled once into the ``.pyc``. A subclass lists its fields in ``_fields`` and sets them in its own
``__init__`` through ``self.__dict__``.
"""

from __future__ import annotations

from typing import Any, ClassVar


class Frozen:
    """Base of an immutable record: compared, hashed and shown by its ``_fields``."""

    #: the fields, in ``repr`` order
    _fields: ClassVar[tuple[str, ...]] = ()
    #: the fields ``==`` and ``hash`` use, when not all of them
    _compared: ClassVar[tuple[str, ...] | None] = None

    def _key(self) -> tuple[Any, ...]:
        d = self.__dict__
        return tuple(d[f] for f in (self._fields if self._compared is None else self._compared))

    def __eq__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            return self._key() == other._key()  # type: ignore[attr-defined]
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        d = self.__dict__
        return f"{type(self).__qualname__}({', '.join(f'{f}={d[f]!r}' for f in self._fields)})"

    def __setattr__(self, name: str, value: Any) -> None:
        from dataclasses import FrozenInstanceError

        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        from dataclasses import FrozenInstanceError

        raise FrozenInstanceError(f"cannot delete field {name!r}")
