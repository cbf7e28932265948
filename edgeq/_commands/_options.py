"""Options several commands share, so each is spelt and explained the same way everywhere."""

from __future__ import annotations

import argparse


def add_json_options(p: argparse.ArgumentParser, what: str = "the result") -> None:
    """``--json`` prints ``what`` as JSON on stdout instead of tables; ``--json-out FILE`` writes it to FILE."""
    p.add_argument("--json", action="store_true", help=f"print {what} as JSON on stdout instead of tables")
    p.add_argument("--json-out", metavar="FILE",
                   help=f"also write {what} as JSON to FILE (refused if FILE exists, unless --force)")
    if not any("--force" in a.option_strings for a in p._actions):
        p.add_argument("--force", action="store_true", help="overwrite output files that exist")


def add_normalize_options(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--normalize`` (default: what the model's own input layers expect) and ``--force-normalize``."""
    p.add_argument("--normalize", help="0,1 | -1,1 | imagenet | raw | MEAN/STD (image data; default: what the model's own "
                   "input layers expect, e.g. raw after Rescaling(1/255), else 0,1)")
    p.add_argument("--force-normalize", action="store_true",
                   help="use --normalize even where it contradicts the model's own preprocessing layers")
