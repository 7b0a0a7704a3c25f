"""Traces shipped with a model's package, so its plan at a resolution preset is answered without tracing: what every
model's `shipped.py` shares (reading the file, its key, building, checking, the command line). The model's own
module says what it ships (`shapes`), how it computes a weights entry and builds its meta models.

The entries are exactly what the tracer returns, under the keys the cache uses (`i2v.models.cost.trace_key`), so
a plan made from them equals a traced plan. The file is keyed to what its numbers depend on, not to the exact
library releases it was made with:

- `trace`: the tracer's version (`TRACE_VERSION` of the model's cost module: our code and the shapes it traces);
- `architecture`: a digest of the meta models the installed libraries build (`tracing.architecture_fingerprint`:
  module tree, parameter and buffer shapes and dtypes, configs, attention processors);
- `libraries`: the release series of each traced library (`SERIES`), which `pyproject.toml` bounds.

A plan compares only what is cheap: the trace version and the installed releases' series (package metadata, no
import). The digest needs diffusers and transformers imported and the meta models built (seconds), so `check`
and the tests rebuild it with the installed libraries, and re-trace a sample, and fail when either differs: an
upgrade within a series that changes the architecture or a number cannot pass CI with the file unchanged. A
library outside the series (another torch minor release, say) is simply traced as before.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import os
import random
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import ModuleType

from i2v.models.spec import ModelSpec

#: Image aspect ratios (width:height) whose preset sizes are shipped; the portrait of each too. 2:1 also
#: stands for anything wider, which the request clamps to 2:1.
ASPECTS: tuple[tuple[int, int], ...] = ((1, 1), (5, 4), (4, 3), (3, 2), (16, 9), (2, 1))
#: What the shipped traces are made for: CUDA (fp16 or bf16) and CPUs with bf16, flash/efficient attention.
DTYPE, ATTENTION = "half", "efficient"
#: How many leading parts of each traced library's version the file is keyed to. torch: its minor release (the
#: meta kernels, decompositions and FLOP formulas a trace runs are torch's, and change between minor releases; it
#: is not bounded above, GPU users bring their own build). diffusers: its minor release while it is 0.x (0.x minor
#: releases are its breaking ones). transformers: its major release (model classes and configs hold within one, as
#: released checkpoints must keep loading). pyproject.toml bounds diffusers and transformers to these series
#: (tests/test_advisor.py checks that); the architecture digest catches what a release in a series changes anyway.
SERIES = {"torch": 2, "diffusers": 2, "transformers": 1}


class ShippedTraces:
    """One model's `traces.json`: `memory` is its cost module (TRACE_VERSION, TRACED_LIBRARIES, `_run_trace`);
    `shapes` lists (kind, shape) of every entry, in build order (the model's `shipped` module names this `TRACES`); `weights` computes a "weights" entry from its
    shape; `architecture` builds the meta models the traces run (digested into the key; built once before a
    build forks its workers). `write_every` and `chunksize` pace a build."""

    def __init__(
        self, *, package: str, path: Path, memory: ModuleType, shapes: Callable[[], list[tuple[str, dict]]],
        weights: Callable[[dict], dict], architecture: Callable[[], dict], write_every: int, chunksize: int,
    ) -> None:
        self.package, self.path, self.memory = package, path, memory
        self.shapes, self._weights, self._architecture = shapes, weights, architecture
        self.write_every, self.chunksize = write_every, chunksize

    # -- reading --------------------------------------------------------------------------------------------

    def lookup(self, key: str) -> dict | None:
        """The shipped trace under `key` (a `trace_key`), or None when there is none or the file does not apply
        to the installed libraries."""
        return self._entries().get(key)

    @functools.cache  # noqa: B019 - one instance per model, alive as long as the process
    def _entries(self) -> dict[str, dict]:
        document = read(self.path)
        if document is None or not self.applies(document["key"]):
            return {}
        return document["entries"]

    def installed_series(self, installed: dict[str, str] | None = None) -> dict[str, str]:
        """The release series of each traced library installed (or of `installed`, name -> version)."""
        installed = installed or self.memory.library_versions(self.memory.TRACED_LIBRARIES)
        return {name: series(installed[name], SERIES[name]) for name in self.memory.TRACED_LIBRARIES}

    def applies(self, key: dict[str, object], installed: dict[str, str] | None = None) -> bool:
        """What a plan checks, cheaply: the file's trace version is this tracer's and each traced library
        installed (or in `installed`) is of the file's series. The architecture digest is `current_key`'s."""
        return key.get("trace") == self.memory.TRACE_VERSION and key.get("libraries") == self.installed_series(installed)

    def current_key(self) -> dict[str, object]:
        """The key a file made now would have: the meta models built with the installed libraries (seconds)."""
        from i2v.models.tracing import architecture_fingerprint

        return dict(
            trace=self.memory.TRACE_VERSION, libraries=self.installed_series(),
            architecture=architecture_fingerprint(self._architecture()),
        )

    def shipped_key(self) -> dict[str, object] | None:
        """The shipped file's key (None when it is missing or unreadable)."""
        document = read(self.path)
        return document["key"] if document else None

    def trace(self, kind: str, shape: dict) -> dict:
        """One entry computed afresh, exactly as the cache would compute it."""
        return self._weights(shape) if kind == "weights" else self.memory._run_trace(kind, **shape)

    # -- building -------------------------------------------------------------------------------------------

    def build(self, path: Path | None = None, jobs: int = 1, fresh: bool = False, log=None) -> int:
        """Trace every shape in `shapes()` missing from `path` (all of them when `fresh`, or when the file was
        made under another key) and write the file, every `write_every` entries so an interrupted build
        resumes. Returns how many entries were traced."""
        path = path or self.path
        log = log or functools.partial(print, flush=True)
        document = None if fresh else read(path)
        key = self.current_key()
        kept = document["entries"] if document and document["key"] == key else {}
        wanted = {self.memory.trace_key(kind, **shape): (kind, shape) for kind, shape in self.shapes()}
        entries = {key: value for key, value in kept.items() if key in wanted}
        missing = [(key, *wanted[key]) for key in wanted if key not in entries]
        log(f"{len(wanted)} shapes: {len(entries)} already traced, {len(missing)} to trace on {jobs} process(es)")
        started, done = time.monotonic(), 0
        for key, value in self._traced(missing, jobs):
            entries[key] = value
            done += 1
            if done % self.write_every == 0 or done == len(missing):
                self.write(path, key, entries)
                rate = done / (time.monotonic() - started)
                log(f"  {done}/{len(missing)} ({rate:.2f}/s, {(len(missing) - done) / rate / 60:.0f} min left)")
        self.write(path, key, entries)
        return done

    def _traced(self, missing: list[tuple[str, str, dict]], jobs: int) -> Iterator[tuple[str, dict]]:
        if jobs <= 1 or len(missing) < 2:
            for key, kind, shape in missing:
                yield key, self.trace(kind, shape)
            return
        import multiprocessing

        self._architecture()  # built once, shared by the forked workers
        context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
        with context.Pool(jobs) as pool:
            # Chunks of one size's shapes: a worker's tracer reuses what it learnt of a size.
            items = [(self.package, *item) for item in missing]
            yield from pool.imap_unordered(_trace_one, items, chunksize=self.chunksize)

    def write(self, path: Path, key: dict[str, object], entries: dict[str, dict]) -> None:
        """One entry a line, sorted, so a rebuild's diff shows what changed; `made_with` records the exact
        releases that traced them (what the key does not compare)."""
        lines = [f"    {json.dumps(key)}: {json.dumps(entries[key], sort_keys=True)}" for key in sorted(entries)]
        about = f"Meta-device traces for {self.package}.cost; see {self.package.replace('.', '/')}/shipped.py. Generated."
        text = (
            "{\n"
            f'  "about": {json.dumps(about)},\n'
            f'  "key": {json.dumps(key, sort_keys=True)},\n'
            f'  "made_with": {json.dumps(self.memory.library_versions(self.memory.TRACED_LIBRARIES), sort_keys=True)},\n'
            '  "entries": {\n' + ",\n".join(lines) + "\n  }\n}\n"
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)

    # -- checking -------------------------------------------------------------------------------------------

    def sample(self, count: int | None = None, seed: int = 0, max_frames: int | None = None) -> list[str]:
        """Shipped keys to re-trace: one of each variant (the key less its size and frame count: any size and
        frame count up to `max_frames`, drawn with `seed`), then more drawn at random up to `count`."""
        keys = sorted(read(self.path)["entries"])  # type: ignore[index]
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

    def check(self, keys: Iterable[str]) -> list[str]:
        """Re-trace `keys` and list those whose shipped entry differs (an empty list: all equal)."""
        document = read(self.path)
        if document is None:
            return [f"{self.path} is missing or unreadable"]
        shape_of = {self.memory.trace_key(kind, **shape): (kind, shape) for kind, shape in self.shapes()}
        wrong = []
        for key in keys:
            if key not in shape_of:
                wrong.append(f"{key}: not a shape this module ships")
                continue
            fresh = self.trace(*shape_of[key])
            if document["entries"].get(key) != fresh:
                wrong.append(f"{key}: shipped {document['entries'].get(key)}, traced now {fresh}")
        return wrong

    def main(self, argv: list[str] | None = None, description: str | None = None) -> int:
        """`python -m <package>.shipped build|check`."""
        module = f"python -m {self.package}.shipped"
        parser = argparse.ArgumentParser(prog=module, description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
        commands = parser.add_subparsers(dest="command", required=True)
        building = commands.add_parser("build", help="trace what is missing and write the file")
        building.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
        building.add_argument("--fresh", action="store_true", help="trace everything again")
        building.add_argument("--path", type=Path, default=self.path)
        checking = commands.add_parser("check", help="re-trace a sample and compare")
        checking.add_argument("--sample", type=int, default=20, help="entries to re-trace (at least one of each variant)")
        checking.add_argument("--seed", type=int, default=0)
        checking.add_argument("--max-frames", type=int, default=None, help="draw only from clips this long or shorter")
        arguments = parser.parse_args(argv)
        if arguments.command == "build":
            self.build(arguments.path, jobs=arguments.jobs, fresh=arguments.fresh)
            return 0
        shipped, current = self.shipped_key(), self.current_key()
        used = "used" if shipped and self.applies(shipped) else "NOT used"
        print(f"shipped key {shipped}\nkey now     {current}\nplans: the shipped traces are {used}")
        wrong = [f"{name}: shipped {(shipped or {}).get(name)}, now {value}" for name, value in current.items()
                 if (shipped or {}).get(name) != value]
        wrong += self.check(self.sample(arguments.sample, arguments.seed, arguments.max_frames))
        for line in wrong:
            print(line)
        print("all equal" if not wrong else f"{len(wrong)} differ: rebuild with `{module} build`")
        return 1 if wrong else 0


def read(path: Path) -> dict | None:
    """The shipped file's document, or None when it is missing, unreadable or not shaped as `write` writes it."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(document, dict) or not isinstance(document.get("entries"), dict):
        return None
    if not isinstance(document.get("key"), dict):
        return None
    return document


def series(version: str, parts: int) -> str:
    """A release's series: its first `parts` numbers ("5.25.0" -> "5"; "2.13.0+cu126" -> "2.13" for 2)."""
    return ".".join(version.split("+")[0].split(".")[:parts])


def sizes(spec: ModelSpec, aspects: Iterable[tuple[int, int]] = ASPECTS) -> list[tuple[int, int]]:
    """Every preset of `spec` at every aspect ratio (both orientations), plus each size the ladder's "lower
    resolution" rung steps down to from one of them."""
    aspects = tuple(aspects)
    found: set[tuple[int, int]] = set()
    for wide, high in {*aspects, *((high, wide) for wide, high in aspects)}:
        for preset in spec.size.presets:
            size: tuple[int, int] | None = spec.size.target(preset, wide * 1000, high * 1000)
            while size is not None and size not in found:
                found.add(size)
                size = spec.size.smaller(*size)
    return sorted(found)


def _trace_one(item: tuple[str, str, str, dict]) -> tuple[str, dict]:
    """In a build worker: one entry, by the model package's `TRACES` (what a worker can be sent by name)."""
    package, key, kind, shape = item
    return key, importlib.import_module(f"{package}.shipped").TRACES.trace(kind, shape)


def _frames(key: str) -> int:
    return next((int(part[len("frames="):]) for part in key.split("|") if part.startswith("frames=")), 0)
