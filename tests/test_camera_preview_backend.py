"""`camera-preview` through the same paths as a diffusion model: the Python API, the CLI and a real server."""

from __future__ import annotations

import json

import av
import numpy as np
import pytest
from helpers import run_cli

from i2v import GenerationCancelled, GenerationRequest, generate
from i2v.models.base import Hooks


def request(photo_path, **fields):
    settings = dict(image=photo_path, prompt="镜头向左平移", model="camera-preview", width=96, height=64, num_frames=8, seed=3)
    return GenerationRequest(**{**settings, **fields})


def test_the_refiners_camera_tags_drive_the_frames(photo_path):
    steps, stages = [], []
    result = generate(request(photo_path), Hooks(on_step=lambda step, total, elapsed: steps.append((step, total)), on_stage=stages.append))
    assert result.frames.shape == (8, 64, 96, 3) and result.frames.dtype == np.uint8
    assert result.metadata["refined_prompt"]["tags"] == ["pan_left"]
    assert result.metadata["model"] == {"id": "camera-preview", "revision": None, "backend": "camera-preview"}
    assert steps == [(i, 8) for i in range(1, 9)] and stages == ["load", "refine", "render"]
    assert not np.array_equal(result.frames[0], result.frames[-1])
    assert any("pans left" in warning for warning in result.warnings)
    still = generate(request(photo_path, prompt="固定镜头"))
    assert still.metadata["refined_prompt"]["tags"] == ["static_camera"]
    assert all(np.array_equal(frame, still.frames[0]) for frame in still.frames)


def test_same_seed_same_frames_and_cancel_within_one_frame(photo_path):
    shaky = request(photo_path, prompt="手持镜头", seed=11)
    assert np.array_equal(generate(shaky).frames, generate(shaky).frames)
    assert not np.array_equal(generate(shaky).frames, generate(shaky.model_copy(update={"seed": 12})).frames)
    polls = []
    with pytest.raises(GenerationCancelled) as cancelled:
        generate(request(photo_path), Hooks(cancelled=lambda: polls.append(1) or len(polls) > 3))
    assert cancelled.value.step == 3 and cancelled.value.total == 8


def test_cli_writes_a_pan_without_any_weights(tmp_path):
    out = tmp_path / "pan.mp4"
    result = run_cli("generate", "examples/cat.jpg", "镜头向左平移", "--model", "camera-preview", "--width", "128", "--height", "96", "-o", str(out))
    assert result.returncode == 0, result.stderr
    with av.open(str(out)) as container:
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    assert len(frames) == 16 and frames[0].shape == (96, 128, 3)
    metadata = json.loads(out.with_suffix(".json").read_text())
    assert metadata["model"]["backend"] == "camera-preview" and metadata["refined_prompt"]["tags"] == ["pan_left"]
