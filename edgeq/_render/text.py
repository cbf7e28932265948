"""The one gate for strings from the outside world (models, reports, files) on their way to a terminal or page."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # rich loads when something is drawn: safe_str alone serves JSON runs without it
    from rich.text import Text

# C0 and C1 control characters, DEL, lone surrogates, and the bidirectional overrides that reorder what is shown.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069]")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe_str(value: object, lines: bool = False) -> str:
    """``value`` as a string whose control characters are shown as ``\\xNN`` escapes, never sent raw.

    Use for plain outputs that are not rich markup (HTML after ``html.escape``, chart labels, log lines).

    Args:
        value: anything; ``str(value)`` is cleaned.
        lines: keep line breaks (for multi-line text edgeq composed itself); otherwise they are escaped too.
    """
    text = str(value)
    if lines:
        return "\n".join(_UNSAFE.sub(_visible, line) for line in text.split("\n"))
    return _UNSAFE.sub(_visible, text)


def safe_text(value: object, style: str = "", lines: bool = False) -> Text:
    """``value`` as a rich ``Text``: never parsed as markup, control characters shown as escapes.

    Every model label, tensor name, report field or file name that reaches a table, title or message goes
    through this helper (``lines`` as in :func:`safe_str`).
    """
    from rich.text import Text

    return Text(safe_str(value, lines), style=style)


def safe_markup(value: object) -> str:
    """``value`` ready to embed in a rich markup string: control characters but line breaks escaped, then ``[``."""
    from rich.markup import escape

    return escape(safe_str(value, lines=True))
