"""Jobs per minute through the Redis queue with 1 worker and with 2 workers, side by side in one run.

Starts a throwaway redis-server, one `i2v serve --no-local-worker` node and CPU workers (`OMP_NUM_THREADS` per
worker set by --threads) on the tiny random-weight model, submits K jobs over the REST API for each pool size
and times first submit to last finish. What it measures on a CPU box is the queue's overhead and how the cores
split between workers, not GPU scaling: with one GPU per worker the ratio is bounded by the GPU count instead.

Run: python bench/throughput.py [--jobs 20] [--size 64] [--frames 8] [--steps 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from helpers import RedisServer, ServerProcess, WorkerProcess, make_photo  # noqa: E402


def image_bytes() -> bytes:
    buffer = io.BytesIO()
    make_photo(96, 64).save(buffer, format="PNG")
    return buffer.getvalue()


def run_batch(http: httpx.Client, fields: dict, count: int) -> tuple[float, list[dict]]:
    """Submit `count` jobs at once; seconds from the first submit until all finished, and the finished jobs."""
    image = image_bytes()
    started = time.perf_counter()
    ids = []
    for seed in range(count):
        response = http.post("/api/v1/jobs", files={"image": ("p.png", image, "image/png")},
                             data={"request": json.dumps({**fields, "seed": seed})})
        response.raise_for_status()
        ids.append(response.json()["id"])
    pending = set(ids)
    finished: dict[str, dict] = {}
    while pending:
        for job in http.get("/api/v1/jobs", params={"limit": 200}).json()["jobs"]:
            if job["id"] in pending and job["state"] not in ("queued", "running"):
                pending.discard(job["id"])
                finished[job["id"]] = job
        time.sleep(0.05)
    elapsed = time.perf_counter() - started
    failed = [job for job in finished.values() if job["state"] != "succeeded"]
    if failed:
        raise SystemExit(f"{len(failed)} job(s) did not succeed: {failed[0]['error']}")
    return elapsed, list(finished.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=20, help="jobs per pool size")
    parser.add_argument("--size", type=int, default=64, help="width and height (multiple of 64)")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per worker (OMP_NUM_THREADS)")
    args = parser.parse_args()
    fields = {"prompt": "a cat turning its head", "width": args.size, "height": args.size,
              "num_frames": args.frames, "steps": args.steps, "fps": 8}
    console = Console()

    from i2v.models.i2vgenxl.tiny import make_tiny_model

    with tempfile.TemporaryDirectory(prefix="i2v-bench-") as temp:
        folder = Path(temp)
        model = make_tiny_model(folder / "tiny")
        redis_server = RedisServer(folder).start()
        (folder / "home").mkdir()
        server = ServerProcess(folder / "home", model, env={"I2V_QUEUE_URL": redis_server.url}, args=("--no-local-worker",))
        env = {"OMP_NUM_THREADS": str(args.threads)}
        workers = [WorkerProcess(folder, redis_server.url, model, f"w{index}", env=env) for index in (1, 2)]
        results = []
        try:
            workers[0].start()
            server.start()
            workers[0].wait_ready()
            with httpx.Client(base_url=server.url, timeout=60) as http:
                run_batch(http, fields, 2)  # warm-up: first-run allocations, encoder start-up
                results.append((1, *run_batch(http, fields, args.jobs)))
                workers[1].start().wait_ready()
                run_batch(http, fields, 2)
                results.append((2, *run_batch(http, fields, args.jobs)))
        finally:
            for worker in workers:
                worker.stop()
            server.stop()
            redis_server.stop()

    table = Table(title=f"{args.jobs} jobs of {args.size}×{args.size}×{args.frames} frames, {args.steps} steps, "
                        f"tiny model, {args.threads} thread(s)/worker, {os.cpu_count()} CPU cores")
    for column in ("workers", "wall s", "jobs/min", "mean run s/job", "jobs per worker", "vs 1 worker"):
        table.add_column(column, justify="right")
    base = None
    for count, elapsed, jobs in results:
        per_minute = args.jobs / elapsed * 60
        base = base or per_minute
        runs = [sum(job["timings"].values()) for job in jobs]
        split = sorted(sum(job["worker"] == name for job in jobs) for name in {job["worker"] for job in jobs})
        table.add_row(str(count), f"{elapsed:.1f}", f"{per_minute:.1f}", f"{statistics.fmean(runs):.3f}",
                      "/".join(map(str, split)), f"{per_minute / base:.2f}×")
    console.print(table)


if __name__ == "__main__":
    main()
