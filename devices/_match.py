"""Which board profile a device belongs to: the ``match`` rules of the board files, without building profiles.

:class:`~edgeq.devices.BoardProfile` and the runtime's thread default (:mod:`edgeq.devices._threads`) both decide
with these functions, so a fast start cannot pick another board than ``edgeq devices`` shows.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

#: the folder holding the built-in board files (package data)
BOARDS_DIR = Path(__file__).with_name("boards")


class Rule(NamedTuple):
    """The fields of one board file that choose and size a profile."""

    key: str
    model: str | None
    arch: tuple[str, ...]
    recommended_threads: int | None


def matches(model_rule: str | None, arch_rule: tuple[str, ...], model: str | None, arch: str | None) -> bool:
    """Whether a device with this model string and architecture meets a board file's ``match`` rules."""
    if arch_rule and arch not in arch_rule:
        return False
    return model_rule is None or bool(model and re.search(model_rule, model))


def specificity(model_rule: str | None, arch_rule: tuple[str, ...]) -> int:
    """2 for a rule on the model string, 1 on the architecture only, 0 for the catch-all."""
    return 2 if model_rule else 1 if arch_rule else 0


def threads_for(recommended: int | None, physical_cores: int | None) -> int:
    """A profile's thread count on a device with ``physical_cores`` cores (its own, else one per core)."""
    return recommended or max(1, physical_cores or 1)


@lru_cache(maxsize=1)
def builtin_rules() -> tuple[Rule, ...]:
    """The rules of the built-in board files, sorted by key as :func:`edgeq.devices.load_profiles` sorts them.

    Raises:
        OSError, ValueError, KeyError, TypeError: a board file is unreadable or malformed (``load_profiles`` says
            which and how).
    """
    rules = []
    for path in sorted(BOARDS_DIR.glob("*.json"), key=lambda p: p.stem):
        data = json.loads(path.read_text(encoding="utf-8"))
        match = data.get("match") or {}
        rules.append(Rule(path.stem, match.get("model"), tuple(match.get("arch", ())), data.get("recommended_threads")))
    return tuple(rules)


def best(rules: tuple[Rule, ...], model: str | None, arch: str | None) -> Rule | None:
    """The most specific rule a device meets (the first in key order among equals), or ``None``."""
    candidates = [r for r in rules if matches(r.model, r.arch, model, arch)]
    return max(candidates, key=lambda r: specificity(r.model, r.arch)) if candidates else None
