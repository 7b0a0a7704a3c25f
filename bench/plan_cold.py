"""How long a cold `i2v plan` takes: a fresh process with an empty data folder (no cached traces).

Each run is `i2v plan examples/cat.jpg --resolution 512p --frames 16 --vram 24GiB` (or the command given after
`--`) in a new Python process with I2V_HOME set to a new empty folder; the median of --runs is reported, with
whether diffusers / transformers were imported. Give --baseline REV to time a commit's tree the same way, in
the same machine state (runs interleaved), e.g. the commit before the shipped traces:

    python bench/plan_cold.py --baseline 4756acd
    python bench/plan_cold.py -- examples/cat.jpg --resolution 1024p --frames 32 --steps 100 --vram 24GiB

Run on an idle machine: the target is ≤ 3 s on 2 cores (issue 10). Timings are wall clock, not CPU time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ["examples/cat.jpg", "--resolution", "512p", "--frames", "16", "--vram", "24GiB"]
#: Runs the CLI, then reports on stderr's last line which heavy libraries the process imported.
DRIVER = """
import json, sys
from i2v.cli import main
try:
    main()
except SystemExit as exit:
    code = exit.code
else:
    code = 0
heavy = [name for name in ("torch", "diffusers", "transformers") if name in sys.modules]
print("BENCH " + json.dumps(dict(code=code, heavy=heavy)), file=sys.stderr)
"""


def cold_run(arguments: list[str], source: Path | None) -> tuple[float, dict, str]:
    """Seconds for one fresh `i2v plan --json` process with an empty data folder, what it imported, its stdout."""
    with tempfile.TemporaryDirectory() as home:
        environment = {**os.environ, "I2V_HOME": home}
        environment.pop("I2V_VRAM", None)
        if source is not None:  # that tree's package first on the path, ahead of the editable install
            paths = [str(source / "src"), environment.get("PYTHONPATH")]
            environment["PYTHONPATH"] = os.pathsep.join(path for path in paths if path)
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", DRIVER, "plan", *arguments, "--json"], cwd=ROOT, env=environment,
            capture_output=True, text=True, check=False,
        )
        seconds = time.perf_counter() - started
    lines = [line for line in done.stderr.splitlines() if line.startswith("BENCH ")]
    if done.returncode or not lines:
        raise SystemExit(f"i2v plan failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return seconds, json.loads(lines[-1][len("BENCH "):]), done.stdout


def export(revision: str, into: Path) -> Path:
    """The tree of `revision` (git archive), to time it as it was."""
    archive = subprocess.run(["git", "archive", revision], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def summary(name: str, runs: list[tuple[float, dict, str]]) -> str:
    times = [seconds for seconds, _, _ in runs]
    heavy = sorted({module for _, info, _ in runs for module in info["heavy"]})
    report = json.loads(runs[-1][2])
    return (
        f"{name:>10}: median {statistics.median(times):.2f} s  (runs {', '.join(f'{t:.2f}' for t in times)})  "
        f"imported {', '.join(heavy) or 'none of torch/diffusers/transformers'}; "
        f"peak {report['predicted_peak_bytes'] / 2**30:.2f} GiB, {report['plan']['width']}×{report['plan']['height']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--baseline", help="a git revision to time alongside the working tree")
    parser.add_argument("command", nargs="*", help="arguments of `i2v plan` after `--` [default: the 512p example]")
    arguments = parser.parse_args()
    command = arguments.command or DEFAULT
    print(f"load average before: {', '.join(f'{value:.2f}' for value in os.getloadavg())} on {os.cpu_count()} CPUs")
    print(f"i2v plan {' '.join(command)}")
    with tempfile.TemporaryDirectory() as folder:
        trees: dict[str, Path | None] = {"this tree": None}
        if arguments.baseline:
            trees = {arguments.baseline: export(arguments.baseline, Path(folder)), **trees}
        runs: dict[str, list] = {name: [] for name in trees}
        for _ in range(arguments.runs):  # interleaved, so both see the same machine state
            for name, source in trees.items():
                runs[name].append(cold_run(command, source))
    for name, results in runs.items():
        print(summary(name, results))
    if arguments.baseline:
        plans = {name: json.loads(results[-1][2]) for name, results in runs.items()}
        first, second = plans.values()
        # A plan field only one tree has (e.g. `backend`, added with models as plugins) is named, not compared.
        shared = first["plan"].keys() & second["plan"].keys()
        print("same report (peaks, plan, changes):", all(first[key] == second[key] for key in (
            "predicted_peak_bytes", "unconstrained_peak_bytes", "changes", "stages", "predicted_seconds"))
            and all(first["plan"][key] == second["plan"][key] for key in shared))
        for name, plan in plans.items():
            only = sorted(plan["plan"].keys() - shared)
            if only:
                print(f"plan fields only {name} has: {', '.join(only)}")
    print(f"load average after: {', '.join(f'{value:.2f}' for value in os.getloadavg())}")


if __name__ == "__main__":
    main()
