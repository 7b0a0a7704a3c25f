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


def run_cli(*args: str, env: dict | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    """Run the installed console script exactly as a user would."""
    full_env = {**os.environ, **(env or {})}
    script = shutil.which("i2v")
    command = [script, *args] if script else [sys.executable, "-m", "i2v", *args]
    return subprocess.run(command, capture_output=True, text=True, env=full_env, timeout=timeout)


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

    def start(self, timeout: float = 90) -> "ServerProcess":
        import time

        import httpx

        script = shutil.which("i2v")
        command = [script] if script else [sys.executable, "-m", "i2v"]
        env = {**os.environ, "I2V_HOME": str(self.home), "I2V_MODEL": str(self.model), **self.env}
        self.log = open(os.path.join(str(self.home), "server-test.log"), "ab")
        self.process = subprocess.Popen([*command, "serve", "--port", str(self.port), *self.args], env=env, stdout=self.log, stderr=self.log)
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
    """A throwaway `redis-server` on a free loopback port, without persistence: a restart loses everything."""

    def __init__(self, folder, port: int | None = None):
        self.folder = folder
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10) -> "RedisServer":
        import socket
        import time

        command = ["redis-server", "--save", "", "--appendonly", "no", "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.folder)]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as connection:
                    connection.sendall(b"PING\r\n")
                    if connection.recv(16).startswith(b"+PONG"):
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
    script = shutil.which("i2v")
    return [script, "worker"] if script else [sys.executable, "-m", "i2v", "worker"]


class WorkerProcess:
    """`i2v worker` as a real process on the CPU, logging to a file in `folder`."""

    def __init__(self, folder, queue: str, model, name: str, env: dict | None = None, args: tuple[str, ...] = ()):
        self.folder, self.queue, self.model, self.name = folder, queue, str(model), name
        self.env = env or {}
        self.args = args
        self.process: subprocess.Popen | None = None
        self.log_path = os.path.join(str(folder), f"worker-{name}.log")

    def start(self) -> "WorkerProcess":
        self.offset = os.path.getsize(self.log_path) if os.path.exists(self.log_path) else 0
        env = {**os.environ, "I2V_MODEL": self.model, "OMP_NUM_THREADS": "1", **self.env}
        command = [*worker_command(), "--queue", self.queue, "--device", "cpu", "--model", self.model, "--name", self.name, *self.args]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(command, env=env, stdout=log, stderr=log)
        return self

    def wait_ready(self, timeout: float = 90) -> "WorkerProcess":
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
