"""The contract every registered backend keeps, through the Python API (`i2v.generate`), one test per clause.

Each test runs once per backend: the `contract_model` fixture yields the model name a user passes (`--model`),
and `BACKENDS` below holds the little each backend is expected to do differently (its stages, what one step
is, its id and dtype). A new backend (Wan next) is one row in `BACKENDS`: every clause then applies to it.

The clauses: validation before anything runs; same seed, same frames (another seed, other frames); cancel
within one step; progress and stages in order; complete metadata, saved as it is; atomic output; the plan
recorded. Each of Wan's step caches runs the clauses its state or hooks could break (5b). Sizes are tiny (64×64, 8 frames, 3 steps) so the file runs in seconds on two cores; no test looks at
a clock's reading, only at the order of what was reported.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from pathlib import Path

import av
import numpy as np
import pytest
from helpers import PretendGPU
from pydantic import ValidationError

import i2v
from i2v import GenerationCancelled, GenerationRequest, InvalidInputError, generate
from i2v.errors import OutputWriteError
from i2v.generation import get_backend
from i2v.models.base import Hooks
from i2v.models.registry import load_backend, plugins, spec_for


@dataclass(frozen=True)
class Contract:
    """What one backend does in its own way; everything else is the same for all."""

    #: The model name a user passes, given pytest's `request` (fixtures such as tiny_model build it).
    model: Callable[[pytest.FixtureRequest], str]
    #: `metadata["model"]["backend"]`.
    backend: str
    #: `metadata["model"]["id"]` for the model name.
    model_id: Callable[[str], str]
    #: The stages after the common "load" and "refine", in order.
    stages: tuple[str, ...]
    #: The stage during which on_step reports; the stages after it come once every step is done.
    stepping_stage: str
    #: What one on_step step is: a denoising step ("steps") or one frame ("frames").
    step_unit: str
    #: `metadata["runtime"]["dtype"]` when the run asks for fp32.
    dtype: str
    #: Runs on a GPU when there is one (and so is planned by the advisor); False: draws on the CPU always.
    uses_gpu: bool = True
    #: Shows live previews while it steps (hooks.preview); a model-free backend, quick anyway, shows none.
    previews: bool = True


BACKENDS = {
    "tiny I2VGen-XL": Contract(
        model=lambda request: str(request.getfixturevalue("tiny_model")),
        backend="i2vgenxl",
        model_id=lambda model: str(Path(model).resolve()),
        stages=("encode", "denoise", "decode"),
        stepping_stage="denoise",
        step_unit="steps",
        dtype="fp32",
    ),
    "tiny Wan 2.2": Contract(
        model=lambda request: str(request.getfixturevalue("wan_tiny_model")),
        backend="wan22",
        model_id=lambda model: str(Path(model).resolve()),
        stages=("encode", "denoise", "decode"),
        stepping_stage="denoise",
        step_unit="steps",
        dtype="fp32",
    ),
    "camera-preview": Contract(
        model=lambda request: "camera-preview",
        backend="camera-preview",
        model_id=lambda model: "camera-preview",
        stages=("render",),
        stepping_stage="render",
        step_unit="frames",
        dtype="uint8",
        uses_gpu=False,
        previews=False,
    ),
}


def test_the_suite_covers_every_registered_backend():
    """A new model folder is not done until it is in BACKENDS: the registry and this table name the same ones."""
    assert {contract.backend for contract in BACKENDS.values()} == set(plugins())


@pytest.fixture(scope="module", params=list(BACKENDS))
def contract_model(request) -> str:
    """The model name of each registered backend in turn (module scope: pytest runs one backend's tests together,
    so the cached backend is loaded once per backend, not once per test)."""
    return BACKENDS[request.param].model(request)


@pytest.fixture
def contract(request, contract_model) -> Contract:
    return BACKENDS[request.node.callspec.params["contract_model"]]


def frames_for(model: str) -> int:
    """The same small job's frame count for every backend: 8, or the model's nearest count below (Wan: 5)."""
    return spec_for(model).frames.nearest(8)[0]


def make_request(photo_path: Path, model: str, **fields) -> GenerationRequest:
    """The same small job for every backend: 3 denoising steps where the model denoises (its spec says so)."""
    settings = {
        "image": photo_path, "prompt": "镜头慢慢推近", "model": model, "width": 64, "height": 64,
        "num_frames": frames_for(model), "fps": 8, "seed": 7,
    }
    if spec_for(model).steps is not None:
        settings["steps"] = 3
    return GenerationRequest(**{**settings, **fields})


def run(request: GenerationRequest, **callbacks) -> i2v.GenerationResult:
    """generate() as a user calls it, in fp32 (exact comparisons; camera-preview ignores the dtype)."""
    return generate(request, Hooks(**callbacks), dtype="fp32")


def total_steps(contract: Contract, request: GenerationRequest) -> int:
    return request.steps if contract.step_unit == "steps" else request.num_frames


# 1. Same seed, same frames; another seed, other frames.


def test_same_seed_same_frames_other_seed_other_frames(contract_model, contract, photo_path):
    """A handheld camera (手持镜头), so the seed matters to camera-preview too (it seeds only the sway). Watching
    live previews changes nothing: the second run has a preview hook. A backend that shows previews shows them
    as uint8 frames×H×W×3 at most 256 px on a side, at steps in order ending at the last."""
    shaky = make_request(photo_path, contract_model, prompt="手持镜头", seed=11)
    previews = []
    first = run(shaky)
    again = run(shaky, on_preview=lambda step, total, frames: previews.append((step, total, frames)))
    assert first.frames.shape == (frames_for(contract_model), 64, 64, 3) and first.frames.dtype == np.uint8
    assert first.seed == again.seed == first.metadata["seed"] == 11
    assert np.array_equal(first.frames, again.frames)
    if contract.previews:
        steps = [step for step, _, _ in previews]
        assert steps and steps == sorted(set(steps)) and steps[-1] == total_steps(contract, shaky)
        for _, total, frames in previews:
            assert total == total_steps(contract, shaky) and frames.dtype == np.uint8
            assert frames.ndim == 4 and frames.shape[-1] == 3 and 1 <= frames.shape[0] <= len(first.frames)
            assert max(frames.shape[1:3]) <= 256
    else:
        assert previews == []
    other = run(shaky.model_copy(update={"seed": 12}))
    assert other.seed == 12
    assert not np.array_equal(first.frames, other.frames)


# 2. Cancel within one step.


@pytest.mark.parametrize("k", [0, 2])
def test_cancel_within_one_step(contract_model, contract, photo_path, k):
    """`cancelled` is polled before every step: when it turns True on poll k + 1, the run stops with
    GenerationCancelled(step=k), after exactly k steps were reported, and it is not polled again."""
    check_cancel_within_one_step(make_request(photo_path, contract_model), contract, k)


def check_cancel_within_one_step(request: GenerationRequest, contract: Contract, k: int) -> None:
    polls, steps = [], []

    def cancelled() -> bool:
        polls.append(len(steps))
        return len(polls) > k

    with pytest.raises(GenerationCancelled) as stopped:
        run(request, on_step=lambda step, total, elapsed: steps.append(step), cancelled=cancelled)
    assert (stopped.value.step, stopped.value.total) == (k, total_steps(contract, request))
    assert len(steps) <= k and steps == list(range(1, k + 1))
    assert len(polls) == k + 1, f"polled {len(polls)} times for a cancel on poll {k + 1}"
    assert polls == list(range(k + 1)), "each poll must come before the step it guards"


# 3. Progress and stages in order.


def test_progress_and_stages_in_order(contract_model, contract, photo_path):
    """on_step reports strictly increasing steps ending at the total, every one during the backend's stepping
    stage; stages come as "load", "refine", then the backend's own, each once."""
    check_progress_and_stages_in_order(make_request(photo_path, contract_model), contract)


def check_progress_and_stages_in_order(request: GenerationRequest, contract: Contract) -> i2v.GenerationResult:
    """The run's reports checked as above; the run's result, for more checks on the same run."""
    events, reports = [], []

    def on_step(step: int, total: int, elapsed: float) -> None:
        events.append(("step", step))
        reports.append((step, total, elapsed))

    result = run(request, on_step=on_step, on_stage=lambda name: events.append(("stage", name)))
    total = total_steps(contract, request)
    steps = [step for step, _, _ in reports]
    assert all(later > earlier for earlier, later in pairwise(steps)), f"steps not strictly increasing: {steps}"
    assert steps and steps[-1] == total, f"steps {steps} do not end at the total {total}"
    assert steps == list(range(1, total + 1)), "one report after every step"
    assert {reported_total for _, reported_total, _ in reports} == {total}
    elapsed = [seconds for _, _, seconds in reports]
    assert elapsed[0] >= 0 and elapsed == sorted(elapsed)

    stages = ["load", "refine", *contract.stages]
    assert [name for kind, name in events if kind == "stage"] == stages
    split = stages.index(contract.stepping_stage) + 1
    expected = [*(("stage", name) for name in stages[:split]), *(("step", step) for step in range(1, total + 1)),
                *(("stage", name) for name in stages[split:])]
    assert events == expected
    return result


# 4. Metadata complete, and saved as it is.


def test_metadata_complete_and_saved_as_is(contract_model, contract, photo_path, tmp_path):
    request = make_request(photo_path, contract_model)
    result = run(request)
    metadata = result.metadata

    # The request as run: the user's settings, and the model's defaults for the rest.
    applied = spec_for(request.model).resolve(request, (96, 64)).as_request(request)
    assert metadata["request"] == applied.model_dump(mode="json")
    assert {key: value for key, value in metadata["request"].items() if key in request.model_fields_set} == request.model_dump(
        mode="json", include=request.model_fields_set
    )
    assert None not in (metadata["request"]["num_frames"], metadata["request"]["fps"], metadata["request"]["resolution"])
    assert metadata["seed"] == result.seed == 7
    refined = metadata["refined_prompt"]
    assert isinstance(refined["prompt"], str) and refined["prompt"] and isinstance(refined["tags"], list)
    assert refined["source"] == "rules"
    assert metadata["image"] == {
        "sha256": hashlib.sha256(photo_path.read_bytes()).hexdigest(), "format": "PNG", "size": [96, 64],
    }
    video = metadata["video"]
    assert (video["width"], video["height"], video["num_frames"], video["fps"]) == (64, 64, frames_for(contract_model), 8)
    assert result.frames.shape == (video["num_frames"], video["height"], video["width"], 3) and result.fps == video["fps"]
    assert metadata["model"] == {"id": contract.model_id(contract_model), "revision": None, "backend": contract.backend}
    assert metadata["runtime"]["device"] == "cpu" and metadata["runtime"]["dtype"] == contract.dtype
    timings = metadata["timings"]
    assert {"load", "refine", *contract.stages} <= set(timings), f"a stage without its timing: {sorted(timings)}"
    assert all(isinstance(seconds, (int, float)) and seconds >= 0 for seconds in timings.values())
    assert metadata["warnings"] == result.warnings
    versions = metadata["versions"]
    assert {"python", "i2v", "numpy"} <= set(versions) and versions["i2v"] == i2v.__version__
    assert datetime.fromisoformat(metadata["created"]).tzinfo is not None

    path = result.save(tmp_path / "clip.mp4")
    saved = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    assert saved == result.metadata
    assert saved["output"]["path"] == str(path.resolve())


# 5. Atomic output.


def test_output_is_atomic(contract_model, photo_path, tmp_path):
    """A save (the one write stage) leaves the clip, its thumbnail and its JSON and nothing else; a save that
    cannot be done leaves nothing at all."""
    check_output_is_atomic(run(make_request(photo_path, contract_model)), tmp_path, frames_for(contract_model))


def check_output_is_atomic(result: i2v.GenerationResult, tmp_path: Path, frames: int) -> None:
    folder = tmp_path / "out"
    path = result.save(folder / "clip.mp4")
    names = sorted(entry.name for entry in folder.iterdir())
    assert not [name for name in names if name.startswith(".") or ".partial" in name], names
    assert names == ["clip.jpg", "clip.json", "clip.mp4"]
    with av.open(str(path)) as container:
        assert sum(1 for _ in container.decode(video=0)) == frames

    blocker = tmp_path / "blocker"  # a file where the output folder would have to be
    blocker.write_text("not a folder")
    before = sorted(str(entry) for entry in tmp_path.rglob("*"))
    with pytest.raises(OutputWriteError):
        result.save(blocker / "sub" / "clip.mp4")
    assert sorted(str(entry) for entry in tmp_path.rglob("*")) == before

    occupied = tmp_path / "occupied"  # the folder exists, but the clip's name is taken by a folder
    (occupied / "clip.mp4").mkdir(parents=True)
    with pytest.raises(OutputWriteError):
        result.save(occupied / "clip.mp4")
    assert [entry.name for entry in occupied.iterdir()] == ["clip.mp4"] and (occupied / "clip.mp4").is_dir()
    assert not any((occupied / "clip.mp4").iterdir())


# 5b. Each Wan step cache keeps the clauses a cache could break.

#: Wan's step caches (all but "off", which is the uncached run the rows above check).
WAN_CACHES = [cache for cache in spec_for("wan2.2-ti2v-5b").caches if cache != "off"]
#: One step more than the common job's 3: TaylorSeer runs its first 3 calls in full and skips the 4th; MagCache
#: and PAB skip some calls by then too (`cost.cache_compute`'s schedules).
CACHED_STEPS = 4


@pytest.mark.parametrize("cache", WAN_CACHES)
def test_each_wan_cache_keeps_seed_cancel_progress_and_atomic_output(wan_tiny_model, photo_path, tmp_path, cache):
    """The clauses a cache's state or hooks could break, on the tiny Wan row's job with the cache on: same seed,
    same frames (its state starts empty each run); progress and stages in order; atomic output; cancel within
    one step (its hooks leave with the cancelled run: the next run gives the same frames again). Two runs and a
    cancelled one per cache, about a second: validation, metadata and the plan do not depend on the cache and
    stay with the rows above (tests/test_wan_cache.py checks each cache skips work and changes the frames)."""
    contract = BACKENDS["tiny Wan 2.2"]
    request = make_request(photo_path, str(wan_tiny_model), cache=cache, steps=CACHED_STEPS)
    first = check_progress_and_stages_in_order(request, contract)
    assert first.metadata["request"]["cache"] == cache and any(note.startswith(f"{cache} cache:") for note in first.warnings)
    check_output_is_atomic(first, tmp_path, frames_for(request.model))
    check_cancel_within_one_step(request, contract, 2)
    assert np.array_equal(run(request).frames, first.frames)


# 6. The plan recorded.


def test_cpu_run_records_no_plan(contract_model, photo_path):
    """The advisor plans device memory, so it runs for GPU runs only: a CPU run records `plan: None` and no
    retries (planning the tiny test model would report the real model's memory, and tracing it costs seconds)."""
    metadata = run(make_request(photo_path, contract_model)).metadata
    assert "plan" in metadata, sorted(metadata)
    assert metadata["plan"] is None
    assert metadata["retries"] == []


def test_gpu_run_records_its_plan(contract_model, contract, photo_path, request, monkeypatch):
    """A GPU run records the plan the advisor made for it with the backend's own cost model, and runs it. A
    backend that never uses a GPU says so by its device, whatever device is asked for, so it is never planned."""
    if not contract.uses_gpu:
        assert load_backend(contract_model, device="cuda", dtype="fp16").device == "cpu"
        assert generate(make_request(photo_path, contract_model), device="cuda").metadata["plan"] is None
        return
    monkeypatch.setenv("I2V_VRAM", "24GiB")
    monkeypatch.delenv("PYTORCH_CUDA_ALLOC_CONF", raising=False)  # probe_device sets it; put it back after
    loaded = request.getfixturevalue("backend") if contract.backend == "i2vgenxl" else get_backend(contract_model, dtype="fp32")
    gpu = PretendGPU(loaded)
    job = make_request(photo_path, contract_model)
    result = generate(job, backend=gpu)
    plan = result.metadata["plan"]
    assert plan is not None and plan["backend"] == contract.backend
    steps = spec_for(contract_model).resolve(job, (96, 64)).steps or 1  # a model that does not denoise plans one pass
    assert (plan["width"], plan["height"], plan["frames"], plan["steps"]) == (64, 64, frames_for(contract_model), steps)
    assert plan["fits"] is True and plan["device"] == "cuda"
    assert result.metadata["retries"] == [] and len(gpu.options) == 1
    assert result.metadata["runtime"]["device"] == "cuda:0"
    assert result.metadata["runtime"]["cfg_mode"] == gpu.options[0].cfg_mode == plan["cfg_mode"]
    assert result.frames.shape == (frames_for(contract_model), 64, 64, 3)


# 7. Validation before anything runs.


def test_out_of_any_models_range_refused_by_the_request_itself(contract_model, photo_path):
    """0 frames is no model's: the request refuses it when it is built, naming the field."""
    with pytest.raises(ValidationError) as refused:
        make_request(photo_path, contract_model, num_frames=0)
    assert {str(part) for item in refused.value.errors() for part in item["loc"]} == {"num_frames"}


def test_out_of_range_setting_refused_before_anything_runs(contract_model, photo_path):
    """More frames than any backend renders (but within what the request accepts for any model) is refused by the
    model's spec with the field named, before a stage starts or a step runs. `cancelled` answers True, so a run
    that wrongly starts stops at once and fails here as GenerationCancelled."""
    stages, steps, polls = [], [], []
    request = make_request(photo_path, contract_model, num_frames=1000)
    with pytest.raises(InvalidInputError) as refused:
        run(request, on_step=lambda *args: steps.append(args), on_stage=stages.append, cancelled=lambda: polls.append(1) or True)
    assert refused.value.problems[0][0] == "num_frames" and "num_frames" in str(refused.value)
    assert (stages, steps, polls) == ([], [], [])


def test_setting_outside_the_models_own_rule_refused_naming_it(contract_model, photo_path):
    """One frame past the model's own maximum (within what the request accepts for any model) is refused by the
    model's spec, naming the field and the model's range, before anything runs."""
    rule = spec_for(contract_model).frames
    stages = []
    with pytest.raises(InvalidInputError) as refused:
        run(make_request(photo_path, contract_model, num_frames=rule.max + 1), on_stage=stages.append)
    assert refused.value.problems and refused.value.problems[0][0] == "num_frames"
    assert f"between {rule.min} and {rule.max}" in str(refused.value) and f"got {rule.max + 1}" in str(refused.value)
    assert stages == []
