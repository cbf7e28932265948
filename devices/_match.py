"""Which board profile a device belongs to: the ``match`` rules of the board files, without building profiles.

:class:`~edgeq.devices.BoardProfile` and the runtime's thread default (:mod:`edgeq.devices._threads`) both decide
with these functions, so a fast start cannot pick another board than ``edgeq devices`` shows.
"""

from __future__ import annotations

import json
import os
import re
from functools import lru_cache
from pathlib import Path

#: the folder holding the built-in board files (package data)
BOARDS_DIR = Path(__file__).with_name("boards")


class Rule:
    """The fields of one board file that choose and size a profile (a plain class: no generated code to compile)."""

    __slots__ = ("key", "model", "arch", "recommended_threads")

    def __init__(self, key: str, model: str | None, arch: tuple[str, ...], recommended_threads: int | None) -> None:
        self.key, self.model, self.arch, self.recommended_threads = key, model, arch, recommended_threads


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
    for key in sorted(n[:-5] for n in os.listdir(BOARDS_DIR) if n.endswith(".json")):  # os: faster than a glob
        with open(os.path.join(BOARDS_DIR, f"{key}.json"), encoding="utf-8") as f:
            data = json.load(f)
        match = data.get("match") or {}
        rules.append(Rule(key, match.get("model"), tuple(match.get("arch", ())), data.get("recommended_threads")))
    return tuple(rules)


def best(rules: tuple[Rule, ...], model: str | None, arch: str | None) -> Rule | None:
    """The most specific rule a device meets (the first in key order among equals), or ``None``."""
    candidates = [r for r in rules if matches(r.model, r.arch, model, arch)]
    return max(candidates, key=lambda r: specificity(r.model, r.arch)) if candidates else None
