"""How long the CLI's quick commands take cold: each run a fresh process with an empty data folder (no cached traces).

The cases are issue 21's, each with its target on 2 idle cores:

    plan          i2v plan examples/cat.jpg --vram 24GiB                                            ≤ 2 s
    plan-1024p    i2v plan examples/cat.jpg --resolution 1024p --frames 32 --steps 100 --vram 24GiB  ≤ 2 s
    models        i2v models list --json                                                            ≤ 1 s

Each case runs once untimed (bytecode compiled, files in the page cache), then --runs times; the report gives the
fastest and the median wall-clock run, the fastest run's CPU time (user + system, which a busy machine inflates
far less than wall clock) and which heavy libraries the process imported. The machine these run on is usually
shared: the fastest run is the one least disturbed, so it is what is compared with the target; the load average
before and after says how busy it was. Give --baseline REV to time a commit's tree the same way, runs
interleaved so both see the same machine state, and to check that both print the same:

    python bench/plan_cold.py --baseline main
    python bench/plan_cold.py --case models --runs 9
    python bench/plan_cold.py -- plan examples/cat.jpg --model wan2.2-ti2v-5b --vram 24GiB   # any i2v command
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASES = {
    "plan": (["plan", "examples/cat.jpg", "--vram", "24GiB"], 2.0),
    "plan-1024p": (["plan", "examples/cat.jpg", "--resolution", "1024p", "--frames", "32", "--steps", "100", "--vram", "24GiB"], 2.0),
    "models": (["models", "list", "--json"], 1.0),
}
HEAVY = ("torch", "diffusers", "transformers", "gradio", "fastapi", "numpy", "av")
#: Runs the CLI as the `i2v` script does, then reports on stderr's last line which heavy libraries it imported.
DRIVER = f"""
import json, sys
from i2v.cli import main
try:
    main()
except SystemExit as exit:
    code = exit.code
else:
    code = 0
heavy = [name for name in {HEAVY!r} if name in sys.modules]
print("BENCH " + json.dumps(dict(code=code, heavy=heavy)), file=sys.stderr)
"""


@dataclass
class Run:
    seconds: float
    cpu_seconds: float
    heavy: list[str]
    stdout: str


def cold_run(arguments: list[str], source: Path | None) -> Run:
    """One fresh `i2v ARGUMENTS` process with an empty data folder: wall clock, CPU time, what it imported."""
    with tempfile.TemporaryDirectory() as home:
        environment = {**os.environ, "I2V_HOME": home}
        environment.pop("I2V_VRAM", None)
        if source is not None:  # that tree's package first on the path, ahead of the editable install
            paths = [str(source / "src"), environment.get("PYTHONPATH")]
            environment["PYTHONPATH"] = os.pathsep.join(path for path in paths if path)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", DRIVER, *arguments], cwd=ROOT, env=environment, capture_output=True, text=True, check=False,
        )
        seconds = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    lines = [line for line in done.stderr.splitlines() if line.startswith("BENCH ")]
    report = json.loads(lines[-1][len("BENCH "):]) if lines else None
    if done.returncode or report is None or report["code"]:
        raise SystemExit(f"i2v {' '.join(arguments)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Run(seconds, cpu, report["heavy"], done.stdout)


def export(revision: str, into: Path) -> Path:
    """The tree of `revision` (git archive), to time it as it was."""
    archive = subprocess.run(["git", "archive", revision], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def summary(name: str, runs: list[Run], target: float | None) -> str:
    times = sorted(run.seconds for run in runs)
    fastest = min(runs, key=lambda run: run.seconds)
    heavy = sorted({module for run in runs for module in run.heavy})
    verdict = "" if target is None else f"  [target ≤ {target:g} s: {'met' if times[0] <= target else 'NOT met'}]"
    return (
        f"  {name:>12}: fastest {times[0]:.2f} s, median {statistics.median(times):.2f} s, fastest's CPU "
        f"{fastest.cpu_seconds:.2f} s  (runs {', '.join(f'{run.seconds:.2f}' for run in runs)}); "
        f"imported {', '.join(heavy) or 'none of ' + '/'.join(HEAVY)}{verdict}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--case", action="append", choices=sorted(CASES), help="a case to run (repeatable) [default: all]")
    parser.add_argument("--baseline", help="a git revision to time alongside the working tree")
    parser.add_argument("command", nargs="*", help="an i2v command after `--`, instead of the cases")
    arguments = parser.parse_args()
    cases = {"custom": (arguments.command, None)} if arguments.command else {name: CASES[name] for name in arguments.case or CASES}
    print(f"load average before: {', '.join(f'{value:.2f}' for value in os.getloadavg())} on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as folder:
        trees: dict[str, Path | None] = {"this tree": None}
        if arguments.baseline:
            trees = {arguments.baseline: export(arguments.baseline, Path(folder)), **trees}
        for case, (command, target) in cases.items():
            print(f"{case}: i2v {' '.join(command)}")
            for source in trees.values():
                cold_run(command, source)  # untimed: bytecode compiled, files cached
            runs: dict[str, list[Run]] = {name: [] for name in trees}
            for _ in range(arguments.runs):  # interleaved, so every tree sees the same machine state
                for name, source in trees.items():
                    runs[name].append(cold_run(command, source))
            for name, results in runs.items():
                print(summary(name, results, target if name == "this tree" else None))
            if arguments.baseline:
                outputs = {results[-1].stdout for results in runs.values()}
                print(f"  same output from both trees: {len(outputs) == 1}")
    print(f"load average after: {', '.join(f'{value:.2f}' for value in os.getloadavg())}")


if __name__ == "__main__":
    main()
