"""Shared fixtures: a tiny random-weight model written and loaded through the real code, and test images."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
import torch
from helpers import make_photo

# Tests never reach the hub: a missing model must fail fast with our message, not try the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Tiny models are too small to gain from threads; on 2 shared cores, one thread avoids oversubscription
# with the servers and workers the tests start.
torch.set_num_threads(1)
# The same for every server, worker and CLI process a test starts: two OpenMP threads each on two shared cores
# made a 64×64 step 100× slower.
os.environ.setdefault("OMP_NUM_THREADS", "1")
# Live-preview fits (one per tiny VAE) go to a folder of the test run, not the user's cache.
os.environ.setdefault("I2V_PREVIEW_CACHE", tempfile.mkdtemp(prefix="i2v-test-preview-fits-"))


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    from i2v.models.i2vgenxl.tiny import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture(scope="session")
def wan_tiny_model(tmp_path_factory) -> Path:
    """A tiny random-weight Wan 2.2 TI2V-5B in the hub's layout (about 0.4 MB)."""
    from i2v.models.wan22.tiny import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("models") / "wan-tiny")


@pytest.fixture(scope="session")
def backend(tiny_model):
    """The tiny model loaded once, in fp32 so comparisons are exact."""
    from i2v.models.i2vgenxl.backend import I2VGenXLBackend
    from i2v.models.loading import resolve_model

    return I2VGenXLBackend.load(resolve_model(str(tiny_model)), device="cpu", dtype="fp32")


@pytest.fixture
def photo_path(tmp_path) -> Path:
    path = tmp_path / "photo.png"
    make_photo().save(path)
    return path


@pytest.fixture
def client(server):
    """An HTTP client for the module's `server` (a real `i2v serve`), with its base URL."""
    import httpx

    with httpx.Client(base_url=server.url, timeout=30) as http:
        yield http
