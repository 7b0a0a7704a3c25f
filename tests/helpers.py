"""Helpers shared by the tests (fixtures live in conftest.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
from PIL import Image


def make_photo(width: int = 96, height: int = 64, seed: int = 0) -> Image.Image:
    """A smooth, non-trivial RGB picture: gradients plus a bright disc, so crops and flips are visible."""
    y, x = np.mgrid[0:height, 0:width]
    rng = np.random.default_rng(seed)
    red = 255 * x / max(width - 1, 1)
    green = 255 * y / max(height - 1, 1)
    blue = np.where((x - width * 0.3) ** 2 + (y - height * 0.4) ** 2 < (min(width, height) * 0.2) ** 2, 255, 40)
    pixels = np.stack([red, green, blue], axis=-1) + rng.normal(0, 4, (height, width, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def i2v_command(*args: str) -> list[str]:
    """The installed console script (or `python -m i2v`) with `args`, as a user runs it."""
    script = shutil.which("i2v")
    return [script, *args] if script else [sys.executable, "-m", "i2v", *args]


def run_cli(*args: str, env: dict | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    """Run the installed console script exactly as a user would."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(i2v_command(*args), capture_output=True, text=True, env=full_env, timeout=timeout)


def run_together(runs: dict[str, tuple[list[str], dict]], timeout: float = 60) -> dict[str, subprocess.CompletedProcess]:
    """Run commands (each with its extra environment) side by side, as each spends most of its time importing;
    results as `subprocess.run` gives them, by name."""
    started = {name: subprocess.Popen(command, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for name, (command, env) in runs.items()}
    finished = {}
    for name, process in started.items():
        out, err = process.communicate(timeout=timeout)
        finished[name] = subprocess.CompletedProcess(process.args, process.returncode, out, err)
    return finished


def terminate(process: subprocess.Popen | None, grace: float = 15) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `grace` seconds."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ServerProcess:
    """`i2v serve` as a real process on a loopback port, with its own data folder."""

    def __init__(self, home, model, port: int | None = None, env: dict | None = None, args: tuple[str, ...] = (),
                 health_headers: dict | None = None):
        self.home, self.model = home, model
        self.port = port or free_port()
        self.env = env or {}
        self.args = args
        self.health_headers = health_headers or {}
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90) -> ServerProcess:
        import time

        import httpx

        env = {**os.environ, "I2V_HOME": str(self.home), "I2V_MODEL": str(self.model), **self.env}
        self.log = open(os.path.join(str(self.home), "server-test.log"), "ab")
        self.process = subprocess.Popen(i2v_command("serve", "--port", str(self.port), *self.args), env=env, stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}")
            try:
                if httpx.get(self.url + "/api/v1/health", headers=self.health_headers, timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("server did not come up")

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        terminate(self.process)
        self.log.close()


class RedisServer:
    """A throwaway `redis-server` on a free loopback port, without persistence: a restart loses everything.
    With `password`, clients must authenticate (the URL carries it)."""

    def __init__(self, folder, port: int | None = None, password: str | None = None):
        self.folder = folder
        self.port = port or free_port()
        self.password = password
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10) -> RedisServer:
        import socket
        import time

        command = ["redis-server", "--save", "", "--appendonly", "no", "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.folder)]
        if self.password:
            command += ["--requirepass", self.password]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as connection:
                    connection.sendall(b"PING\r\n")
                    if connection.recv(16).startswith((b"+PONG", b"-NOAUTH")):
                        return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not come up on port {self.port}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def restart(self, down_seconds: float = 1.0) -> None:
        import time

        self.stop()
        time.sleep(down_seconds)
        self.start()


def worker_command() -> list[str]:
    """`i2v worker`, as a user starts it."""
    return i2v_command("worker")


class WorkerProcess:
    """`i2v worker` as a real process on the CPU, logging to a file in `folder`. `queue` is a URL, or with
    `queue_is_file` a file holding one (passed as --queue-file)."""

    def __init__(self, folder, queue: str, model, name: str, env: dict | None = None, args: tuple[str, ...] = (),
                 queue_is_file: bool = False):
        self.folder, self.queue, self.model, self.name = folder, queue, str(model), name
        self.queue_option = "--queue-file" if queue_is_file else "--queue"
        self.env = env or {}
        self.args = args
        self.process: subprocess.Popen | None = None
        self.log_path = os.path.join(str(folder), f"worker-{name}.log")

    def start(self) -> WorkerProcess:
        self.offset = os.path.getsize(self.log_path) if os.path.exists(self.log_path) else 0
        env = {**os.environ, "I2V_MODEL": self.model, "OMP_NUM_THREADS": "1", **self.env}
        command = [*worker_command(), self.queue_option, self.queue, "--device", "cpu", "--model", self.model, "--name", self.name, *self.args]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(command, env=env, stdout=log, stderr=log)
        return self

    def wait_ready(self, timeout: float = 90) -> WorkerProcess:
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker {self.name} exited with {self.process.returncode}: {self.log()[-2000:]}")
            if "; ready" in self.log():
                return self
            time.sleep(0.1)
        raise RuntimeError(f"worker {self.name} did not become ready: {self.log()[-2000:]}")

    def log(self) -> str:
        """What this run (since the last start) wrote."""
        with open(self.log_path, "rb") as handle:
            handle.seek(self.offset)
            return handle.read().decode("utf-8", errors="replace")

    def signal(self, signum: int, wait: bool = True) -> None:
        self.process.send_signal(signum)
        if wait:
            self.process.wait(30)

    def stop(self) -> None:
        terminate(self.process)


def eventually(probe, timeout: float = 30, interval: float = 0.1):
    """Poll `probe` until it returns something truthy, and return that."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(interval)
    raise AssertionError(f"still not true after {timeout} s: {probe}")


def text_page(width: int = 800, height: int = 600, line: str = "Lorem ipsum dolor sit amet, consectetur",
              size: int = 28, pitch: int = 38) -> Image.Image:
    """A page of dark text on white, drawn with Pillow's own font: what an advisor must read as a document."""
    from PIL import ImageDraw, ImageFont

    page = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(page)
    font = ImageFont.load_default(size=size)
    for index in range((height - 10) // pitch):
        draw.text((width // 36, 10 + index * pitch), line, fill=(15, 15, 15), font=font)
    return page


def png_bytes(width: int = 96, height: int = 64) -> bytes:
    import io

    buffer = io.BytesIO()
    make_photo(width, height).save(buffer, format="PNG")
    return buffer.getvalue()


def png_bomb(width: int = 13000, height: int = 13000) -> bytes:
    """A black grayscale PNG of width×height pixels in a few hundred KB (164 KB at 13000×13000): decoding it costs
    one byte a pixel, three as RGB, so it stands in for a hostile client's decompression bomb."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row, packer = b"\0" * (width + 1), zlib.compressobj(9)  # each row: filter byte 0, then the pixels
    pixels = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grayscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


#: The smallest job worth running on the tiny model: 64×64, 8 frames, 3 steps.
SMALL_JOB = {"prompt": "猫转头", "width": 64, "height": 64, "num_frames": 8, "steps": 3, "fps": 8}


def submit_job(client, fields: dict | None = None, image: bytes | None = None, name: str = "photo.png"):
    """POST /api/v1/jobs as a client does: an image part and a `request` JSON part (`client` has the base URL)."""
    import json

    return client.post("/api/v1/jobs", files={"image": (name, png_bytes() if image is None else image, "image/png")},
                       data={"request": json.dumps(SMALL_JOB if fields is None else fields)})


def submit_accepted(client, fields: dict, image: bytes | None = None) -> str:
    """`submit_job` (a 64×64 photo unless given) that must be accepted: the new job's id."""
    response = submit_job(client, fields, png_bytes(64, 64) if image is None else image)
    assert response.status_code == 202, response.text
    return response.json()["id"]


def wait_for_job(client, job_id: str, predicate, timeout: float = 120) -> dict:
    """Poll GET /api/v1/jobs/ID until `predicate(job)` holds."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/v1/jobs/{job_id}").json()
        if predicate(job):
            return job
        time.sleep(0.1)
    raise AssertionError(f"timed out; last state {job}")


#: What a job says when a cancel reached it after its last denoising step (as a client reads it).
LATE_CANCEL = "the cancel arrived after the last denoising step; the clip was kept"
#: Two steps of ≈0.8 s each on one CPU thread with the tiny model: room to cancel while the last one runs.
LAST_STEP_FIELDS = {"prompt": "waves", "width": 256, "height": 256, "num_frames": 32, "steps": 2, "fps": 8}


class JobClient:
    """The REST calls the tests make of a real `i2v serve`: submit, read, wait for and cancel jobs."""

    def __init__(self, url: str):
        import httpx

        self.url = url
        self.http = httpx.Client(timeout=30)

    def submit(self, fields: dict):
        import json

        return self.http.post(self.url + "/api/v1/jobs", files={"image": ("p.png", png_bytes(), "image/png")},
                              data={"request": json.dumps(fields)})

    def job(self, job_id: str) -> dict:
        return self.http.get(f"{self.url}/api/v1/jobs/{job_id}").json()

    def cancel(self, job_id: str):
        return self.http.post(f"{self.url}/api/v1/jobs/{job_id}/cancel")

    def wait(self, job_id: str, predicate, timeout: float = 60) -> dict:
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.job(job_id)
            if predicate(job):
                return job
            time.sleep(0.05)
        raise AssertionError(f"timed out; last state {job}")

    def wait_done(self, job_id: str, timeout: float = 60) -> dict:
        return self.wait(job_id, lambda job: job["state"] not in ("queued", "running"), timeout)

    def cancel_during_last_step(self) -> dict:
        """Cancel a job once its first of two steps is reported, so the cancel lands while the last step runs,
        after the last check for one; returns the finished job. Tried again (up to three times) when the job
        finished before the cancel reached it."""
        for _ in range(3):
            job_id = self.submit(LAST_STEP_FIELDS).json()["id"]
            self.wait(job_id, lambda job: job["progress"].get("step", 0) >= 1 or job["state"] not in ("queued", "running"))
            if self.cancel(job_id).status_code == 202:
                return self.wait_done(job_id)
        raise AssertionError("three jobs finished before their cancel arrived")

    def close(self) -> None:
        self.http.close()


class PretendGPU:
    """A loaded CPU backend presented as a CUDA one, so generate() takes the advisor's path (plan + recovery)."""

    def __init__(self, backend):
        self.inner = backend
        self.name, self.model_id, self.revision, self.dtype = backend.name, backend.model_id, backend.revision, "fp16"
        self.device = "cuda:0"
        self.options = []  # the run plans it was given

    def generate(self, plan, image, hooks, **extra):
        self.options.append(plan)
        return self.inner.generate(plan, image, hooks, **extra)
