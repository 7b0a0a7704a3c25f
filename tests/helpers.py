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


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ServerProcess:
    """`i2v serve` as a real process on a loopback port, with its own data folder."""

    def __init__(self, home, model, port: int | None = None, env: dict | None = None):
        self.home, self.model = home, model
        self.port = port or free_port()
        self.env = env or {}
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
        self.process = subprocess.Popen([*command, "serve", "--port", str(self.port)], env=env, stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}")
            try:
                if httpx.get(self.url + "/api/v1/health", timeout=1).status_code == 200:
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
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()
