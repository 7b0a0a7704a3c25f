"""Traces shipped with a model's package, so its plan at a resolution preset is answered without tracing: what every
model's `shipped.py` shares (reading the file, the version check, building, checking, the command line). The
model's own module says what it ships (`shapes`), how it computes a weights entry and readies forked workers.

The entries are exactly what the tracer returns, under the keys the cache uses (`i2v.models.cost.trace_key`), so
a plan made from them equals a traced plan. They are used only when made with the same trace version and the
same releases of the traced libraries as those installed (a local build tag such as `+cpu` or `+cu126` is
ignored: the meta-device kernels are the same source); otherwise every shape is traced as before.
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


class ShippedTraces:
    """One model's `traces.json`: `memory` is its cost module (TRACE_VERSION, TRACED_LIBRARIES, `_run_trace`);
    `shapes` lists (kind, shape) of every entry, in build order (the model's `shipped` module names this `TRACES`); `weights` computes a "weights" entry from its
    shape; `prepare_workers` builds what forked build workers share. `write_every` and `chunksize` pace a build."""

    def __init__(
        self, *, package: str, path: Path, memory: ModuleType, shapes: Callable[[], list[tuple[str, dict]]],
        weights: Callable[[dict], dict], prepare_workers: Callable[[], object], write_every: int, chunksize: int,
    ) -> None:
        self.package, self.path, self.memory = package, path, memory
        self.shapes, self._weights, self._prepare_workers = shapes, weights, prepare_workers
        self.write_every, self.chunksize = write_every, chunksize

    # -- reading --------------------------------------------------------------------------------------------

    def lookup(self, key: str) -> dict | None:
        """The shipped trace under `key` (a `trace_key`), or None when there is none or the file does not apply
        to the installed libraries."""
        return self._entries().get(key)

    @functools.cache  # noqa: B019 - one instance per model, alive as long as the process
    def _entries(self) -> dict[str, dict]:
        document = read(self.path)
        if document is None or not self.applies(document["versions"]):
            return {}
        return document["entries"]

    def current_versions(self) -> dict[str, object]:
        return {"trace": self.memory.TRACE_VERSION, **self.memory.library_versions(self.memory.TRACED_LIBRARIES)}

    def applies(self, versions: dict[str, object], installed: dict[str, object] | None = None) -> bool:
        """Same trace version, same releases of the traced libraries (local build tags ignored)."""
        installed = installed or self.current_versions()
        return self._release(versions) == self._release(installed)

    def _release(self, versions: dict[str, object]) -> dict[str, str]:
        return {name: str(versions.get(name, "")).split("+")[0] for name in ("trace", *self.memory.TRACED_LIBRARIES)}

    def shipped_versions(self) -> dict[str, object] | None:
        """The versions the shipped file was made with (None when it is missing or unreadable)."""
        document = read(self.path)
        return document["versions"] if document else None

    def trace(self, kind: str, shape: dict) -> dict:
        """One entry computed afresh, exactly as the cache would compute it."""
        return self._weights(shape) if kind == "weights" else self.memory._run_trace(kind, **shape)

    # -- building -------------------------------------------------------------------------------------------

    def build(self, path: Path | None = None, jobs: int = 1, fresh: bool = False, log=None) -> int:
        """Trace every shape in `shapes()` missing from `path` (all of them when `fresh`, or when the file was
        made with other versions) and write the file, every `write_every` entries so an interrupted build
        resumes. Returns how many entries were traced."""
        path = path or self.path
        log = log or functools.partial(print, flush=True)
        document = None if fresh else read(path)
        versions = self.current_versions()
        kept = document["entries"] if document and document["versions"] == versions else {}
        wanted = {self.memory.trace_key(kind, **shape): (kind, shape) for kind, shape in self.shapes()}
        entries = {key: value for key, value in kept.items() if key in wanted}
        missing = [(key, *wanted[key]) for key in wanted if key not in entries]
        log(f"{len(wanted)} shapes: {len(entries)} already traced, {len(missing)} to trace on {jobs} process(es)")
        started, done = time.monotonic(), 0
        for key, value in self._traced(missing, jobs):
            entries[key] = value
            done += 1
            if done % self.write_every == 0 or done == len(missing):
                self.write(path, versions, entries)
                rate = done / (time.monotonic() - started)
                log(f"  {done}/{len(missing)} ({rate:.2f}/s, {(len(missing) - done) / rate / 60:.0f} min left)")
        self.write(path, versions, entries)
        return done

    def _traced(self, missing: list[tuple[str, str, dict]], jobs: int) -> Iterator[tuple[str, dict]]:
        if jobs <= 1 or len(missing) < 2:
            for key, kind, shape in missing:
                yield key, self.trace(kind, shape)
            return
        import multiprocessing

        self._prepare_workers()  # built once, shared by the forked workers
        context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
        with context.Pool(jobs) as pool:
            # Chunks of one size's shapes: a worker's tracer reuses what it learnt of a size.
            items = [(self.package, *item) for item in missing]
            yield from pool.imap_unordered(_trace_one, items, chunksize=self.chunksize)

    def write(self, path: Path, versions: dict[str, object], entries: dict[str, dict]) -> None:
        """One entry a line, sorted, so a rebuild's diff shows what changed."""
        lines = [f"    {json.dumps(key)}: {json.dumps(entries[key], sort_keys=True)}" for key in sorted(entries)]
        about = f"Meta-device traces for {self.package}.cost; see {self.package.replace('.', '/')}/shipped.py. Generated."
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
        shipped = self.shipped_versions()
        used = "used" if shipped and self.applies(shipped) else "NOT used"
        print(f"shipped with {shipped}, installed {self.current_versions()}: {used}")
        wrong = self.check(self.sample(arguments.sample, arguments.seed, arguments.max_frames))
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
    if not isinstance(document.get("versions"), dict):
        return None
    return document


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
