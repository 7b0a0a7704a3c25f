"""Traces shipped with the package, so a Wan plan at a resolution preset is answered without tracing.

Tracing needs diffusers and transformers imported (about 5 s on 2 cores), and the tiled VAE decode of a long
clip at 720p runs thousands of decoder calls on the meta device (10-20 s). `models/wan22/traces.json` holds what
`cost.predict_peak` asks for at the shapes the presets and the planner's ladder reach on CUDA (and on CPUs with
bf16): half precision, efficient attention, the preset sizes at the common aspect ratios (ASPECTS, portrait and
landscape, and every lower preset the ladder steps down to), every frame count the model allows (5-121, 4k+1),
the VAE decode tiled and untiled; the weights in fp16, bf16 and fp32. Anything else (math attention on MPS,
other sizes) is traced as before and cached in the data folder. Reading, the key, building and
checking are `i2v.models.shipped`'s; `tests/test_advisor_wan.py` re-traces a sample and fails when the file
disagrees with this environment.

Rebuild (when `check` or the tests say the key or a number differs: a library release that changes the
architecture, one outside the key's series, or a change to the tracer with TRACE_VERSION bumped):

    python -m i2v.models.wan22.shipped build [--jobs N]    # reuses entries still valid, writes as it goes
    python -m i2v.models.wan22.shipped check [--sample N]  # re-trace N entries and compare

The build traces the frame counts people ask for most first (FIRST_FRAMES), so an interrupted build already
serves them.
"""

from __future__ import annotations

import sys
from pathlib import Path

from i2v.models.shipped import ATTENTION, DTYPE, ShippedTraces, sizes
from i2v.models.wan22 import cost as memory
from i2v.models.wan22.spec import SPEC

PATH = Path(__file__).with_name("traces.json")
FRAMES = tuple(range(SPEC.frames.min, SPEC.frames.max + 1, SPEC.frames.step))
#: Traced first: the default length, 81 (Wan 2.1's, and 480p's usual) and 49.
FIRST_FRAMES = (121, 81, 49)
WEIGHT_DTYPES = ("bf16", "fp16", "fp32")


def shapes() -> list[tuple[str, dict]]:
    """(kind, shape) of every shipped trace, as `memory` asks for them: the most asked-for frame counts first,
    then the rest; one size after the other within each (the tracer reuses what it learnt of a size)."""
    common = dict(attention=ATTENTION)
    wanted: list[tuple[str, dict]] = [("weights", dict(dtype=dtype)) for dtype in WEIGHT_DTYPES]
    wanted.append(("text_encoder", dict(tokens=memory.TOKENS, dtype=DTYPE, **common)))
    every = sizes(SPEC)
    for width, height in every:
        wanted.append(("vae_encode", dict(width=width, height=height, dtype=memory.VAE_DTYPE, **common)))
    rest = [frames for frames in FRAMES if frames not in FIRST_FRAMES]
    for group in (FIRST_FRAMES, rest):
        for width, height in every:
            for frames in group:
                shape = dict(width=width, height=height, frames=frames)
                wanted.append(("transformer", {**shape, "dtype": DTYPE, **common}))
                for tiling in (False, True):
                    wanted.append(("vae_decode", {**shape, "tiling": tiling, "dtype": memory.VAE_DTYPE, **common}))
    return wanted


def _weights(shape: dict) -> dict:
    from i2v.models.wan22 import architecture

    return architecture.weight_bytes(memory._torch_dtype(shape["dtype"]), memory._torch_dtype(memory.VAE_DTYPE))


def _architecture() -> dict:
    from i2v.models.wan22 import architecture

    return architecture.meta_components(memory._torch_dtype(DTYPE), memory._torch_dtype(memory.VAE_DTYPE))


TRACES = ShippedTraces(
    package="i2v.models.wan22", path=PATH, memory=memory, shapes=shapes, weights=_weights,
    architecture=_architecture, write_every=25, chunksize=6,
)


if __name__ == "__main__":
    sys.exit(TRACES.main(description=__doc__))
