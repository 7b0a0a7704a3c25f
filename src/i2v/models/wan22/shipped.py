"""Traces shipped with the package, so a Wan plan at a resolution preset is answered without tracing.

Tracing needs diffusers and transformers imported (about 5 s on 2 cores), and the tiled VAE decode of a long
clip at 720p runs thousands of decoder calls on the meta device (10-20 s). `models/wan22/traces.json` holds what
`cost.predict_peak` asks for at the shapes the presets and the planner's ladder reach on CUDA (and on CPUs with
bf16): half precision, efficient attention, the preset sizes at the common aspect ratios (ASPECTS, portrait and
landscape, and every lower preset the ladder steps down to), every frame count the model allows (5-121, 4k+1),
the VAE decode tiled and untiled; the weights in fp16, bf16 and fp32. Anything else (math attention on MPS,
other sizes) is traced as before and cached in the data folder.

The entries are exactly what the tracer returns, under the keys the cache uses (`cost.trace_key`), so a plan
made from them equals a traced plan. They are used only when made with the same trace version and the same
torch, diffusers and transformers releases as those installed (a local build tag such as `+cpu` or `+cu126`
is ignored: the meta-device kernels are the same source); otherwise every shape is traced as before.
`tests/test_advisor_wan.py` re-traces a sample and fails when the file disagrees with this environment.

Rebuild (after a library upgrade, or a change to the tracer with TRACE_VERSION bumped):

    python -m i2v.models.wan22.shipped build [--jobs N]    # reuses entries still valid, writes as it goes
    python -m i2v.models.wan22.shipped check [--sample N]  # re-trace N entries and compare

The build traces the frame counts people ask for most first (FIRST_FRAMES), so an interrupted build already
serves them.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from i2v.models.wan22 import cost as memory
from i2v.models.wan22.spec import SPEC

PATH = Path(__file__).with_name("traces.json")
#: Image aspect ratios (width:height) whose preset sizes are shipped; the portrait of each too. 2:1 also
#: stands for anything wider, which the request clamps to 2:1.
ASPECTS: tuple[tuple[int, int], ...] = ((1, 1), (5, 4), (4, 3), (3, 2), (16, 9), (2, 1))
FRAMES = tuple(range(SPEC.frames.min, SPEC.frames.max + 1, SPEC.frames.step))
#: Traced first: the default length, 81 (Wan 2.1's, and 480p's usual) and 49.
FIRST_FRAMES = (121, 81, 49)
#: What the shipped traces were made for: CUDA (fp16 or bf16) and CPUs with bf16, flash/efficient attention.
DTYPE, ATTENTION = "half", "efficient"
WEIGHT_DTYPES = ("bf16", "fp16", "fp32")


# -- reading ------------------------------------------------------------------------------------------------


def lookup(key: str) -> dict | None:
    """The shipped trace under `key` (a `memory.trace_key`), or None when there is none or the file does not
    apply to the installed libraries."""
    return _entries().get(key)


@functools.cache
def _entries() -> dict[str, dict]:
    document = _read(PATH)
    if document is None or not applies(document["versions"]):
        return {}
    return document["entries"]


def _read(path: Path) -> dict | None:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(document, dict) or not isinstance(document.get("entries"), dict):
        return None
    if not isinstance(document.get("versions"), dict):
        return None
    return document


def current_versions() -> dict[str, object]:
    return {"trace": memory.TRACE_VERSION, **memory.library_versions(memory.TRACED_LIBRARIES)}


def applies(versions: dict[str, object], installed: dict[str, object] | None = None) -> bool:
    """Same trace version, same torch/diffusers/transformers releases (local build tags ignored)."""
    installed = installed or current_versions()
    return _release(versions) == _release(installed)


def _release(versions: dict[str, object]) -> dict[str, str]:
    return {name: str(versions.get(name, "")).split("+")[0] for name in ("trace", *memory.TRACED_LIBRARIES)}


def shipped_versions() -> dict[str, object] | None:
    """The versions the shipped file was made with (None when it is missing or unreadable)."""
    document = _read(PATH)
    return document["versions"] if document else None


# -- what is shipped ----------------------------------------------------------------------------------------


def sizes() -> list[tuple[int, int]]:
    """Every preset at every ASPECTS ratio (both orientations), plus each size the ladder's "lower resolution"
    rung steps down to from one of them."""
    from i2v.advisor.plan import ExecutionPlan, _smaller_size

    found: set[tuple[int, int]] = set()
    for wide, high in {*ASPECTS, *((high, wide) for wide, high in ASPECTS)}:
        for preset in SPEC.size.presets:
            size: tuple[int, int] | None = SPEC.size.target(preset, wide * 1000, high * 1000)
            while size is not None and size not in found:
                found.add(size)
                lower = _smaller_size(ExecutionPlan.model_construct(backend=SPEC.backend, width=size[0], height=size[1]))
                size = (lower["width"], lower["height"]) if lower else None
    return sorted(found)


def shapes() -> list[tuple[str, dict]]:
    """(kind, shape) of every shipped trace, as `memory` asks for them: the most asked-for frame counts first,
    then the rest; one size after the other within each (the tracer reuses what it learnt of a size)."""
    common = dict(attention=ATTENTION)
    wanted: list[tuple[str, dict]] = [("weights", dict(dtype=dtype)) for dtype in WEIGHT_DTYPES]
    wanted.append(("text_encoder", dict(tokens=memory.TOKENS, dtype=DTYPE, **common)))
    every = sizes()
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


def trace(kind: str, shape: dict) -> dict:
    """One entry computed afresh, exactly as the cache would compute it."""
    if kind == "weights":
        from i2v.models.wan22 import architecture

        return architecture.weight_bytes(memory._torch_dtype(shape["dtype"]), memory._torch_dtype(memory.VAE_DTYPE))
    return memory._run_trace(kind, **shape)


# -- building -----------------------------------------------------------------------------------------------


def build(path: Path = PATH, jobs: int = 1, fresh: bool = False, log=None) -> int:
    """Trace every shape in `shapes()` missing from `path` (all of them when `fresh`, or when the file was made
    with other versions) and write the file, every few dozen entries so an interrupted build resumes.
    Returns how many entries were traced."""
    log = log or functools.partial(print, flush=True)
    document = None if fresh else _read(path)
    versions = current_versions()
    kept = document["entries"] if document and document["versions"] == versions else {}
    wanted = {memory.trace_key(kind, **shape): (kind, shape) for kind, shape in shapes()}
    entries = {key: value for key, value in kept.items() if key in wanted}
    missing = [(key, *wanted[key]) for key in wanted if key not in entries]
    log(f"{len(wanted)} shapes: {len(entries)} already traced, {len(missing)} to trace on {jobs} process(es)")
    started, done = time.monotonic(), 0
    for key, value in _traced(missing, jobs):
        entries[key] = value
        done += 1
        if done % 25 == 0 or done == len(missing):
            write(path, versions, entries)
            rate = done / (time.monotonic() - started)
            log(f"  {done}/{len(missing)} ({rate:.2f}/s, {(len(missing) - done) / rate / 60:.0f} min left)")
    write(path, versions, entries)
    return done


def _traced(missing: list[tuple[str, str, dict]], jobs: int) -> Iterator[tuple[str, dict]]:
    if jobs <= 1 or len(missing) < 2:
        for key, kind, shape in missing:
            yield key, trace(kind, shape)
        return
    import multiprocessing

    from i2v.models.wan22 import architecture

    architecture.meta_components(memory._torch_dtype(DTYPE), memory._torch_dtype(memory.VAE_DTYPE))  # shared by the forked workers
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    with context.Pool(jobs) as pool:
        # Chunks of one size's shapes: a worker's tracer reuses what it learnt of a size's tiles.
        yield from pool.imap_unordered(_trace_one, missing, chunksize=6)


def _trace_one(item: tuple[str, str, dict]) -> tuple[str, dict]:
    key, kind, shape = item
    return key, trace(kind, shape)


def write(path: Path, versions: dict[str, object], entries: dict[str, dict]) -> None:
    """One entry a line, sorted, so a rebuild's diff shows what changed."""
    lines = [f"    {json.dumps(key)}: {json.dumps(entries[key], sort_keys=True)}" for key in sorted(entries)]
    about = "Meta-device traces for i2v.models.wan22.cost; see i2v/models/wan22/shipped.py. Generated."
    text = (
        "{\n"
        f'  "about": {json.dumps(about)},\n'
        f'  "versions": {json.dumps(versions, sort_keys=True)},\n'
        '  "entries": {\n' + ",\n".join(lines) + "\n  }\n}\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


# -- checking -----------------------------------------------------------------------------------------------


def sample(count: int | None = None, seed: int = 0, max_frames: int | None = None) -> list[str]:
    """Shipped keys to re-trace: one of each variant (kind, tiling, weights dtype: any size and frame count up
    to `max_frames`, drawn with `seed`), then more drawn at random up to `count`."""
    keys = sorted(_read(PATH)["entries"])  # type: ignore[index]
    if max_frames is not None:
        keys = [key for key in keys if _frames(key) <= max_frames]
    variants: dict[str, list[str]] = {}
    for key in keys:
        variant = "|".join(part for part in key.split("|") if not part.startswith(("width=", "height=", "frames=")))
        variants.setdefault(variant, []).append(key)
    draw = random.Random(seed)
    chosen = [draw.choice(group) for _, group in sorted(variants.items())]
    rest = [key for key in keys if key not in chosen]
    more = max(0, min((count or 0) - len(chosen), len(rest)))
    return chosen + draw.sample(rest, more)


def _frames(key: str) -> int:
    return next((int(part[len("frames="):]) for part in key.split("|") if part.startswith("frames=")), 0)


def check(keys: Iterable[str]) -> list[str]:
    """Re-trace `keys` and list those whose shipped entry differs (an empty list: all equal)."""
    document = _read(PATH)
    if document is None:
        return [f"{PATH} is missing or unreadable"]
    shape_of = {memory.trace_key(kind, **shape): (kind, shape) for kind, shape in shapes()}
    wrong = []
    for key in keys:
        if key not in shape_of:
            wrong.append(f"{key}: not a shape this module ships")
            continue
        fresh = trace(*shape_of[key])
        if document["entries"].get(key) != fresh:
            wrong.append(f"{key}: shipped {document['entries'].get(key)}, traced now {fresh}")
    return wrong


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m i2v.models.wan22.shipped", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    building = commands.add_parser("build", help="trace what is missing and write the file")
    building.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    building.add_argument("--fresh", action="store_true", help="trace everything again")
    building.add_argument("--path", type=Path, default=PATH)
    checking = commands.add_parser("check", help="re-trace a sample and compare")
    checking.add_argument("--sample", type=int, default=20, help="entries to re-trace (at least one of each variant)")
    checking.add_argument("--seed", type=int, default=0)
    checking.add_argument("--max-frames", type=int, default=None, help="draw only from clips this long or shorter")
    arguments = parser.parse_args(argv)
    if arguments.command == "build":
        build(arguments.path, jobs=arguments.jobs, fresh=arguments.fresh)
        return 0
    shipped = shipped_versions()
    used = "used" if shipped and applies(shipped) else "NOT used"
    print(f"shipped with {shipped}, installed {current_versions()}: {used}")
    wrong = check(sample(arguments.sample, arguments.seed, arguments.max_frames))
    for line in wrong:
        print(line)
    print("all equal" if not wrong else f"{len(wrong)} differ: rebuild with `python -m i2v.models.wan22.shipped build`")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
