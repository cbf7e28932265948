"""Everything the CLI shows: pure functions that turn results into ``rich`` renderables, and the one Console.

One module per command family (``common``: convert/inspect/run/demo tables and shared formatting; ``accuracy``:
eval/debug/fallback; ``compare``; ``profile``; ``qat``; ``refine``; ``tune``; ``ui``: the Console). Every string
that comes from outside (model labels, tensor names, report fields, file names) goes through
:func:`edgeq._render.text.safe_text`. Names load on first use, so a ``--json`` run never imports rich.
"""

from edgeq._lazy import exports

_COMMON = ("conversion_table", "counts_table", "demo_table", "fmt", "human_bytes", "key_value_table", "outputs_table",
           "predictions_table", "run_summary_table", "run_table", "tensors_table")
_NAMES = {**{n: "edgeq._render.common" for n in _COMMON}, **{n: "edgeq._render.text" for n in
          ("safe_markup", "safe_str", "safe_text")}, "UI": "edgeq._render.ui"}

__all__ = sorted(_NAMES)
__getattr__, __dir__ = exports(__name__, _NAMES, __all__)
