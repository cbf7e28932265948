"""Everything the CLI shows: pure functions that turn results into ``rich`` renderables, and the one Console.

One module per command family (``common``: convert/inspect/run/demo tables and shared formatting; ``accuracy``:
eval/debug/fallback; ``compare``; ``profile``; ``qat``; ``ui``: the Console). Every string that comes from outside
(model labels, tensor names, report fields, file names) goes through :func:`edgeq._render.text.safe_text`.
"""

from edgeq._render.common import (conversion_table, counts_table, demo_table, fmt, human_bytes, key_value_table,
                                  outputs_table, predictions_table, run_summary_table, run_table, tensors_table)
from edgeq._render.text import safe_markup, safe_str, safe_text
from edgeq._render.ui import UI

__all__ = ["UI", "conversion_table", "counts_table", "demo_table", "fmt", "human_bytes", "key_value_table",
           "outputs_table", "predictions_table", "run_summary_table", "run_table", "safe_markup", "safe_str", "safe_text", "tensors_table"]
