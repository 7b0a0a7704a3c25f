"""What an oversized image costs the server when it comes in through the web UI's functions (issue 27 item 2).

Starts a real `i2v serve` (the built-in camera preview as its model, so no weights), uploads a 164 KB grayscale
PNG of 13000×13000 pixels through Gradio's upload route, then calls the UI's image check and submit over
Gradio's HTTP API as a script would: one call at a time, then `--together` calls at once. For each, the answer
time and the server's resident memory (peak while the calls ran, sampled every 20 ms), next to the REST route's
answer to the same file.

Run: python bench/ui_oversize.py [--repeats 3] [--together 8]

Measured on the shared 2-core development machine (no GPU), 8 December 2026:
- before (Gradio converted the upload to RGB before our check): image check 10.2 s a call and +1.7 GB peak,
  submit 13.5 s and +1.7 GB, 8 image checks at once 102 s and +1.9 GB; the REST route 0.01 s.
- after (the file handed over unconverted, checked from its header): image check 0.06 s and +3 MiB, submit
  0.02 s and +0 MiB, 8 at once 0.14 s and +2 MiB; the same refusal, word for word, as the REST route.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from helpers import ServerProcess, png_bomb  # noqa: E402  (the tests' real-server harness)

MiB = 2**20


class PeakMemory:
    """The server process's resident memory, sampled in a thread: its peak between start() and stop()."""

    def __init__(self, pid: int):
        self.process = psutil.Process(pid)
        self.peak = 0
        self.running = False

    def now(self) -> int:
        return self.process.memory_info().rss

    def __enter__(self) -> PeakMemory:
        self.peak, self.running = self.now(), True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.running = False
        self.thread.join()

    def _sample(self) -> None:
        while self.running:
            self.peak = max(self.peak, self.now())
            time.sleep(0.02)


def ui_call(http: httpx.Client, fn: str, data: list) -> tuple[float, str]:
    """One UI function over Gradio's API: seconds to its answer, and the answer's last event line."""
    started = time.perf_counter()
    event = http.post(f"/gradio_api/call/{fn}", json={"data": data}).json()["event_id"]
    stream = http.get(f"/gradio_api/call/{fn}/{event}", timeout=300).text
    lines = [line for line in stream.splitlines() if line.startswith("data: ")]
    return time.perf_counter() - started, (lines[-1] if lines else stream)[:160]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--together", type=int, default=8)
    args = parser.parse_args()
    bomb = png_bomb()
    print(f"image: 13000×13000 grayscale PNG, {len(bomb) / 1024:.0f} KB")
    with tempfile.TemporaryDirectory() as home:
        server = ServerProcess(Path(home), "camera-preview").start()
        try:
            with httpx.Client(base_url=server.url, timeout=300) as http:
                started = time.perf_counter()
                rest = http.post("/api/v1/jobs", files={"image": ("bomb.png", bomb, "image/png")},
                                 data={"request": '{"prompt": "pan left"}'})
                print(f"REST POST /api/v1/jobs: {rest.status_code} in {time.perf_counter() - started:.3f} s: {rest.json()['detail'][:90]}")
                uploaded = http.post("/gradio_api/upload", files={"files": ("bomb.png", bomb, "image/png")}).json()[0]
                image = {"path": uploaded, "meta": {"_type": "gradio.FileData"}}
                form = [image, "镜头向左平移", "", "", "512p", 16, 16, 50, 9.0, 1, "camera-preview", None, None, "rules", True]
                calls = {"check_image": ["en", image, "camera-preview"], "submit": ["en", None, *form]}
                memory = PeakMemory(server.process.pid)
                print(f"server memory at rest: {memory.now() / MiB:.0f} MiB")
                for fn, data in calls.items():
                    with memory:
                        before = memory.now()
                        answers = [ui_call(http, fn, data) for _ in range(args.repeats)]
                    seconds = [answer[0] for answer in answers]
                    print(f"{fn} × {args.repeats}, one at a time: median {statistics.median(seconds):.2f} s "
                          f"(max {max(seconds):.2f}), peak memory {memory.peak / MiB:.0f} MiB (+{(memory.peak - before) / MiB:.0f}); "
                          f"answer: {answers[0][1]}")
                with memory, ThreadPoolExecutor(args.together) as pool:
                    before = memory.now()
                    started = time.perf_counter()
                    answers = list(pool.map(lambda _: ui_call(http, "check_image", calls["check_image"]), range(args.together)))
                    wall = time.perf_counter() - started
                print(f"check_image × {args.together} at once: all answered in {wall:.2f} s, peak memory "
                      f"{memory.peak / MiB:.0f} MiB (+{(memory.peak - before) / MiB:.0f}); jobs queued: "
                      f"{http.get('/api/v1/jobs').json()['total']}")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
