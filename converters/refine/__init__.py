"""``--refine``: a post-conversion optimiser of a quantized ``.tflite``'s weights and biases (numpy + LiteRT).

Layer by layer, against the float model on the calibration data:

0. **activation ranges**: an int8 activation read only by conv / depthwise / fully connected layers gets the
   range (the observed min/max, narrowed) with the least mean |error| at those layers' outputs; their int32
   biases are rescaled to match (:mod:`._ranges`);
1. **weight rounding** (GPTQ): the weights are re-rounded, each rounding error compensated by the weights
   not yet rounded, using the second moments of the layer's inputs (:mod:`._gptq`); the bias absorbs the
   rest. Full-integer layers keep their scales (their bias scale depends on them); weight-only layers may
   also narrow each channel's scale;
2. **bias correction**: the per-channel mean shift of each layer's pre-activation output (quantized vs float,
   measured on the calibration data) is removed from its bias.

Every change is judged on calibration samples held back from the statistics: a layer's change is kept only
if it lowers that layer's output error, and a step only if it lowers the model's mean |output error| vs the
float model by at least 10 %, consistently over the samples (a paired t statistic of 3 or more), without
raising its mean squared error; otherwise it is undone. So a refined model is never further from the float
model on those samples than the plain conversion, and small gains that would not carry over to new data are
not taken.

Cost: the statistics of a step come from one pass of the float and the quantized model over the samples per
block of layers (at most ``MAX_PASSES`` blocks, in graph order, each on the model with the blocks before it
refined), so the model runs do not grow with the number of layers; each layer's change is judged on its own
held-back output error, computed from the same pass.
"""

from edgeq.converters.refine._convert import MODES, check_options, refine_conversion, with_plain
from edgeq.converters.refine._refine import STEPS, RefineReport, StepResult, refine

__all__ = ["refine", "RefineReport", "StepResult", "STEPS", "MODES", "check_options", "refine_conversion", "with_plain"]
