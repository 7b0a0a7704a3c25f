"""MagCache's magnitude-ratio curve for Wan 2.2 TI2V-5B image-to-video, as its authors calibrated it.

MagCache skips a transformer call (adds the last residual to its input instead) while the accumulated error of the
per-step magnitude ratios, ||residual_t|| / ||residual_t-1||, stays under a threshold; the ratios are a property
of the trained weights and the schedule, so they are data, not something diffusers can guess (it ships a curve
for Flux only).

Source: Zehong Ma et al., MagCache, https://github.com/Zehong-Ma/MagCache, file
MagCache4Wan2.2/magcache_generate.py at commit df81cb181776c2c61477c08e1d21f87fda1cd938 (its `ti2v` branch with an
image: the list `mag_ratios` under `else: # i2v`), copied verbatim below. Licence: Apache License 2.0 (the
repository's LICENSE file); attribution in NOTICE at the root of this repository. Calibrated on Wan's own
sampler (flow-matching UniPC, shift 5) at 50 steps with classifier-free guidance.

Their list interleaves the conditional and the unconditional pass of steps 2-50 (step 1 has no previous
residual; their code pads it with 1.0 for both). diffusers keeps MagCache state per cache context, and Wan's
pipeline runs the two passes in the contexts "cond" and "uncond", so each branch keeps its own accumulators and
residual as the authors' code does (index `cnt % 2`), but reads one curve: the conditional one. The two differ by
at most 0.00047 anywhere.

Another step count: `MagCacheConfig(num_inference_steps=N)` resamples the 50-step curve by nearest neighbour
(diffusers' `nearest_interp`, the same formula the authors apply per branch), so step i of N reads the ratio of
calibrated step round(i × 49 / (N - 1)). Neither scales the ratio to the longer stride of a shorter schedule.
"""

from __future__ import annotations

#: Steps 2-50 of the 50-step calibration, conditional and unconditional pass alternating (verbatim from the source).
INTERLEAVED: tuple[float, ...] = (
    0.99512, 0.99559, 0.99559, 0.99561, 0.99595, 0.99577, 0.99512, 0.99512, 0.99546, 0.99534,
    0.99543, 0.99531, 0.99496, 0.99491, 0.99504, 0.99499, 0.99444, 0.99449, 0.99481, 0.99481,
    0.99435, 0.99435, 0.9943, 0.99431, 0.99411, 0.99406, 0.99373, 0.99376, 0.99413, 0.99405,
    0.99363, 0.99359, 0.99335, 0.99331, 0.99244, 0.99243, 0.99229, 0.99229, 0.99239, 0.99236,
    0.99163, 0.9916, 0.99149, 0.99151, 0.99191, 0.99192, 0.9898, 0.98981, 0.9899, 0.98987,
    0.98849, 0.98849, 0.98846, 0.98846, 0.98861, 0.98861, 0.9874, 0.98738, 0.98588, 0.98589,
    0.98539, 0.98534, 0.98444, 0.98439, 0.9831, 0.98309, 0.98119, 0.98118, 0.98001, 0.98,
    0.97862, 0.97859, 0.97555, 0.97558, 0.97392, 0.97388, 0.97152, 0.97145, 0.96871, 0.9687,
    0.96435, 0.96434, 0.96129, 0.96127, 0.95639, 0.95638, 0.95176, 0.95175, 0.94446, 0.94452,
    0.93972, 0.93974, 0.93575, 0.9359, 0.93537, 0.93552, 0.96655, 0.96616,
)

#: The steps the curve was calibrated for.
CALIBRATED_STEPS = 50

#: One ratio a step for the conditional pass, step 1 padded with 1.0 as the authors do: what MagCacheConfig reads.
CONDITIONAL: tuple[float, ...] = (1.0, *INTERLEAVED[0::2])

#: The authors' setting for this model ("E006K2R02" in their MagCache4Wan2.2 README, the one their TI2V-5B 720p
#: timing uses: 10 min 39 s -> 5 min 24 s on an L20): accumulated error at most 0.06, at most 2 skipped calls in a
#: row, the first 20% of the steps never skipped.
THRESHOLD, MAX_SKIP_STEPS, RETENTION_RATIO = 0.06, 2, 0.2
