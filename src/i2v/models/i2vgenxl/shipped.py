"""Traces shipped with the package, so a plan at a resolution preset is answered without tracing.

Tracing a shape needs diffusers and transformers imported (about 4 s on 2 cores) and a second or two per UNet
call, which made a cold `i2v plan` take 7-13 s. `models/i2vgenxl/traces.json` holds the traces `memory.predict_peak`
asks for at every shape the presets and the planner's ladder reach on CUDA (and on CPUs with bf16): half
precision, efficient attention, the preset sizes at the common aspect ratios (ASPECTS, portrait and landscape,
and every lower preset the ladder steps down to), 8-32 frames, guidance in one batch-2 pass or two batch-1
passes, feed-forward chunking on and off, decode one frame at a time, tiled or not. Anything else (fp32, math
attention on MPS, other sizes) is traced as before and cached in the data folder. Reading, the key,
building and checking are `i2v.models.shipped`'s; `tests/test_advisor.py` re-traces a sample and fails when the
file disagrees with this environment.

Rebuild (when `check` or the tests say the key or a number differs: a library release that changes the
architecture, one outside the key's series, or a change to the tracer with TRACE_VERSION bumped):

    python -m i2v.models.i2vgenxl.shipped build [--jobs N]    # reuses entries still valid, writes as it goes
    python -m i2v.models.i2vgenxl.shipped check [--sample N]  # re-trace N entries and compare
"""

from __future__ import annotations

import sys
from pathlib import Path

from i2v.models.i2vgenxl import cost as memory
from i2v.models.i2vgenxl.spec import SPEC
from i2v.models.shipped import ATTENTION, DTYPE, ShippedTraces, sizes

PATH = Path(__file__).with_name("traces.json")
FRAMES = range(SPEC.frames.min, SPEC.frames.max + 1)


def shapes() -> list[tuple[str, dict]]:
    """(kind, shape) of every shipped trace, as `memory` asks for them."""
    common = dict(dtype=DTYPE, attention=ATTENTION)
    wanted: list[tuple[str, dict]] = [("weights", dict(dtype=DTYPE)), ("encoders", common)]
    for width, height in sizes(SPEC):
        wanted.append(("vae_encode", dict(width=width, height=height, **common)))
        for tiling in (False, True):
            wanted.append(("vae_decode", dict(width=width, height=height, chunk=1, tiling=tiling, **common)))
        for frames in FRAMES:
            for batch in (2, 1):
                for ff_chunking in (False, True):
                    unet = dict(width=width, height=height, frames=frames, batch=batch, ff_chunking=ff_chunking)
                    wanted.append(("unet", {**unet, **common}))
    return wanted


def _weights(shape: dict) -> dict:
    from i2v.models.i2vgenxl import architecture

    return architecture.weight_bytes(memory._torch_dtype(shape["dtype"]))


def _architecture() -> dict:
    from i2v.models.i2vgenxl import architecture

    return architecture.meta_components(memory._torch_dtype(DTYPE))


TRACES = ShippedTraces(
    package="i2v.models.i2vgenxl", path=PATH, memory=memory, shapes=shapes, weights=_weights,
    architecture=_architecture, write_every=50, chunksize=4,
)


if __name__ == "__main__":
    sys.exit(TRACES.main(description=__doc__))
