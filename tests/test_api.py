"""The Python API: `from i2v import GenerationRequest, generate`."""

import json

import av
import numpy as np
import pytest
from helpers import PretendGPU, make_photo
from PIL import Image

from i2v import GenerationCancelled, GenerationRequest, InvalidInputError, ModelNotFoundError, generate
from i2v.errors import OutputWriteError
from i2v.models.base import Hooks
from i2v.models.loading import pick_dtype, resolve_model


def request(photo_path, tiny_model, **fields):
    settings = dict(
        image=photo_path, prompt="a cat turning its head", model=str(tiny_model), width=64, height=64, num_frames=8,
        steps=3, fps=8, seed=7,
    )
    return GenerationRequest(**{**settings, **fields})


def test_generate_returns_frames_fps_seed_metadata_and_saves(photo_path, tiny_model, tmp_path):
    steps = []
    result = generate(request(photo_path, tiny_model), Hooks(on_step=lambda *args: steps.append(args[0])), dtype="fp32")
    assert result.frames.shape == (8, 64, 64, 3) and result.frames.dtype == np.uint8
    assert (result.fps, result.seed) == (8, 7)
    assert steps == [1, 2, 3]
    assert result.metadata["runtime"] == {
        "device": "cpu", "dtype": "fp32", "decode_chunk_size": 1, "vae_tiling": False, "cfg_mode": "batch",
        "offload": "none", "ff_chunking": False,
    }
    assert result.metadata["plan"] is None and result.metadata["retries"] == []  # the advisor plans GPU runs
    path = result.save(tmp_path / "clip.mp4")
    with av.open(str(path)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 8
    saved = json.loads((tmp_path / "clip.json").read_text())
    assert saved["output"]["path"] == str(path.resolve()) and saved["seed"] == 7
    with Image.open(tmp_path / "clip.jpg") as thumbnail:  # the write stage the CLI and the job runner share
        assert thumbnail.format == "JPEG" and thumbnail.size == (64, 64)
        pixels = np.asarray(thumbnail, dtype=int)
    first = result.frames[0].astype(int)
    assert np.abs(pixels - first).mean() < np.abs(pixels - first[::-1, ::-1]).mean()  # the first frame, as a JPEG


def test_save_refuses_to_put_the_thumbnail_over_the_input_image(tmp_path):
    """`cat.jpg` animated into `cat.mp4` beside it would lose the photo to the thumbnail: refused, nothing written."""
    image = tmp_path / "cat.jpg"
    make_photo(96, 64).save(image)
    original = image.read_bytes()
    result = generate(GenerationRequest(image=image, prompt="pan left", model="camera-preview", num_frames=2, seed=1))
    with pytest.raises(OutputWriteError, match="cat.jpg is the input image"):
        result.save(tmp_path / "cat.mp4")
    assert image.read_bytes() == original and not (tmp_path / "cat.mp4").exists()
    assert not (tmp_path / "cat.json").exists()


def test_preset_follows_the_image_aspect(photo_path, tiny_model):
    # photo_path is 96×64 (3:2); the 256p preset keeps that shape on the 64 grid.
    result = generate(request(photo_path, tiny_model, width=None, height=None, resolution="256p"), dtype="fp32")
    assert result.frames.shape[1:3] == (192, 320)
    assert result.metadata["video"]["width"] == 320


def test_same_request_same_frames_through_the_api(photo_path, tiny_model):
    first = generate(request(photo_path, tiny_model), dtype="fp32").frames
    second = generate(request(photo_path, tiny_model), dtype="fp32").frames
    assert np.array_equal(first, second)


def test_cancel_through_the_api(photo_path, tiny_model):
    with pytest.raises(GenerationCancelled):
        generate(request(photo_path, tiny_model, steps=10), Hooks(cancelled=lambda: True), dtype="fp32")


def test_bad_image_fails_before_loading_a_model(tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff garbage")
    with pytest.raises(InvalidInputError, match="not a supported image|truncated"):
        generate(GenerationRequest(image=broken, prompt="x", model="nobody/nothing"))


def test_local_folder_without_model_index(tmp_path):
    with pytest.raises(ModelNotFoundError, match="no model_index.json"):
        resolve_model(str(tmp_path))


def test_bad_dtype_and_device_are_input_errors(photo_path, tiny_model):
    import torch

    with pytest.raises(InvalidInputError, match="dtype must be one of fp32, fp16, bf16"):
        pick_dtype(torch.device("cpu"), "fp8")
    with pytest.raises(InvalidInputError, match="no CUDA GPU|device"):
        generate(request(photo_path, tiny_model), device="cuda:0" if not torch.cuda.is_available() else "warp")


def test_refine_is_part_of_the_python_api():
    import i2v

    refined = i2v.refine("慢动作，一个女孩在雨中跳舞")
    assert refined.source == "rules" and "slow_motion" in refined.tags
    assert all(word in refined.prompt.lower() for word in ("girl", "rain", "danc")), refined.prompt


def test_gpu_runs_are_planned_and_recover_from_oom(photo_path, tiny_model, backend, monkeypatch):
    import torch

    monkeypatch.setenv("I2V_VRAM", "24GiB")
    gpu = PretendGPU(backend)
    original = backend.pipeline.unet.forward
    calls = {"n": 0}

    def first_call_runs_out(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 9.00 GiB")
        return original(*args, **kwargs)

    monkeypatch.setattr(backend.pipeline.unet, "forward", first_call_runs_out)
    result = generate(request(photo_path, tiny_model), backend=gpu)
    assert result.frames.shape == (8, 64, 64, 3)
    plan = result.metadata["plan"]
    assert plan is not None and plan["width"] == 64 and plan["frames"] == 8
    assert len(result.metadata["retries"]) == 1
    retry = result.metadata["retries"][0]
    assert retry["stage"] == "denoise" and "out of memory" in retry["error"]
    assert len(gpu.options) == 2 and gpu.options[0] != gpu.options[1]  # the second try ran one rung lower
    assert result.metadata["runtime"]["cfg_mode"] == gpu.options[1].cfg_mode
