"""GPU evidence for i2v: what only a GPU can show, measured once on random weights at real size, in under 8 minutes.

Every GPU figure in the README is otherwise a prediction or a FLOP count. This script measures, on one card, for
I2VGen-XL (parts 1-5) and then Wan 2.2 TI2V-5B (parts 6-8):

1. device: name, driver, CUDA / torch / diffusers versions, the SDPA kernel PyTorch picks, and a practical bf16
   matmul peak (CUDA events, median) beside the card's nominal dense peak from the advisor's table;
2. speed: one denoising UNet step (CFG batch 2) at 512×512×16 and 1280×704×16 after warm-up, its FLOPs (traced on
   the meta device), the TFLOP/s reached and the share of both peaks; and one whole short run split by stage;
3. memory: the advisor's predicted peak per stage against torch.cuda.max_memory_allocated / _reserved per stage
   for three shapes, and from them calibrated values of the advisor's overhead constants, ready to commit;
4. plan24: the 1024×1024×32 plan for a 24 GiB card, run under torch.cuda.set_per_process_memory_fraction so this
   card behaves like one: does it fit, what the ladder did, peak against prediction;
5. soak: back-to-back runs of a mid shape, allocated and reserved memory after each: flat or not;
6. wan_speed: one Wan denoising step (two batch-1 transformer calls, conditional and unconditional, as the backend
   runs guidance) at 832×480×49 and 1280×704×121, its FLOPs traced on the meta device, the share of both peaks;
7. wan_memory: predicted against measured peaks per stage for 832×480×49, 1280×704×49 and 1280×704×121 (2 steps),
   then 1280×704×49 with the pab step cache, whose state (every block's self-attention output) the cost model adds;
8. wan_plan24: the 1280×704×121 plan for a 24 GiB card, 2 steps, under the same allocator cap as part 4.

The Wan parts free I2VGen-XL first, then build Wan at real size with random weights directly on the GPU (transformer
and UMT5-XXL encoder in bf16, initialised there; the VAE in fp32 as the backend keeps it), with a stand-in
tokenizer (the pipeline pads every prompt to 512 tokens, so its vocabulary changes no cost).

Each part has a share of the time budget: it starts no new item after its share is spent, and a generation still
running at the part's cap (its share plus a quarter) is cancelled at the next denoising step; the part then reads
"cut". It writes `gpu.md` (tables) and `gpu.json` to --out after every part, so a run cut short keeps what it measured,
and exits 0 even when a part fails: each part records its own error. Nothing is downloaded; the weights are
random, built on the machine. `--dry-run` runs the same code on the CPU with the tiny random-weight model and tiny
shapes in seconds (CUDA counters then read "n/a on CPU"); tests/test_gpu_check.py runs it.

On a lent nvidia-h200 (the session's `device` tool; no package registry there). Here, first:
    bench/gpu_wheels.sh && bench/gpu_wheels.sh --check    (the wheels its image lacks, ~9 MB, into the ignored .whl/)
then one `run` with carry [".whl"] and timeout_s 560 (the budget, 440 s, plus imports, builds and slack), this command line:
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 || exit; set -o pipefail; python3 bench/gpu_check.py --out "$OUT" 2>&1 | tee "$OUT/gpu.log"
then, here, with FILES_AT the folder the reply names as files_at (its files are read-only, so install, not cp):
    install -m 644 "$FILES_AT/gpu.md" "$FILES_AT/gpu.json" docs/
On a GPU with i2v installed:   PYTHONUNBUFFERED=1 python bench/gpu_check.py     (writes docs/gpu.md, docs/gpu.json)
Anywhere:       python bench/gpu_check.py --dry-run --out /tmp/gpu-check
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

# The device machine runs a copy of the repository where i2v may not be installed.
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

try:
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    from i2v.advisor.device import ALLOCATOR_SETTING, GiB, configure_allocator, format_bytes, parse_size, probe_device
    from i2v.advisor.plan import make_plan, unconstrained_plan
    from i2v.advisor.recovery import MemoryExhaustedError, describe_plan, run_with_recovery
    from i2v.advisor.report import DEFAULT_TFLOPS, UTILIZATION, device_tflops, predicted_seconds
    from i2v.errors import GenerationCancelled
    from i2v.models.base import Hooks
    from i2v.models.i2vgenxl import PLUGIN
    from i2v.models.i2vgenxl.architecture import real_size_components, unet_step_flops, unet_step_inputs
    from i2v.models.i2vgenxl.backend import I2VGenXLBackend
    from i2v.models.i2vgenxl.sampler import I2VGenXLSampler, set_ff_chunking
    from i2v.models.i2vgenxl.tiny import tiny_components
    from i2v.models.loading import DTYPES, ModelSource, free_memory
    from i2v.models.tracing import trace_call
    from i2v.models.wan22 import PLUGIN as WAN_PLUGIN
    from i2v.models.wan22 import architecture as wan_architecture
    from i2v.models.wan22 import tiny as wan_tiny
    from i2v.models.wan22.backend import WanBackend
    from i2v.request import GenerationRequest
except ImportError as missing:  # say so before any device time is spent
    sys.exit(f"gpu_check: {missing}; install i2v's dependencies on this machine (pip install -e .), or on a lent "
             "device machine carry the wheels of bench/gpu_wheels.sh (this file's docstring)")

NA = "n/a on CPU"
PROMPT = "a cat turning its head"
#: The models the requests name: the advisor plans with their specs and cost models, whatever I2V_MODEL says.
MODEL = PLUGIN.known[0].model_id
WAN_MODEL = WAN_PLUGIN.known[0].model_id
PARTS = ("device", "speed", "memory", "plan24", "soak", "wan_speed", "wan_memory", "wan_plan24")
#: Share of the whole time budget each part may start new work in (checked between items). The Wan parts are
#: the larger: they build a 12 B-parameter pipeline, and one 1280×704×121 VAE decode is 2-3 PFLOP in fp32.
PART_SHARE = {
    "device": 0.05, "speed": 0.14, "memory": 0.12, "plan24": 0.11, "soak": 0.06,
    "wan_speed": 0.16, "wan_memory": 0.20, "wan_plan24": 0.16,
}
#: A generation still running this long (a share of the part's own share) after its part's time is spent is
#: cancelled at its next denoising step, and the part reads "cut".
OVERRUN_SHARE = 0.25
START = time.perf_counter()

Shape = tuple[int, int, int]  # width, height, frames


@dataclass(frozen=True)
class Setup:
    """What to measure: the real-size model on a GPU, or the tiny one on the CPU for --dry-run."""

    device: str
    dtype: str
    model: str
    matmul_size: int
    matmul_inner: int
    attention_query: tuple[int, int, int, int]
    step_repeats: int
    speed_shapes: tuple[Shape, ...]
    run_shape: Shape
    run_steps: int
    memory_shapes: tuple[Shape, ...]
    plan_shape: Shape
    plan_vram: str
    soak_shape: Shape
    soak_runs: int
    soak_steps: int


GPU = Setup(
    device="cuda", dtype="bf16", model="real-size I2VGen-XL, random weights", matmul_size=8192, matmul_inner=20,
    attention_query=(32, 5, 4096, 64),  # 512×512×16's first spatial attention: 2×16 frames, 5 heads, 64² tokens
    step_repeats=5, speed_shapes=((512, 512, 16), (1280, 704, 16)), run_shape=(512, 512, 16), run_steps=4,
    memory_shapes=((512, 512, 16), (1280, 704, 16), (768, 768, 24)), plan_shape=(1024, 1024, 32), plan_vram="24GiB",
    soak_shape=(512, 512, 16), soak_runs=10, soak_steps=2,
)
DRY = Setup(
    device="cpu", dtype="bf16", model="tiny I2VGen-XL (i2v.models.i2vgenxl.tiny), random weights", matmul_size=256,
    matmul_inner=4, attention_query=(4, 2, 64, 8), step_repeats=2, speed_shapes=((64, 64, 8), (128, 64, 8)),
    run_shape=(64, 64, 8), run_steps=2, memory_shapes=((64, 64, 8), (128, 64, 8), (128, 128, 8)),
    plan_shape=(128, 128, 8), plan_vram="6GiB", soak_shape=(64, 64, 8), soak_runs=2, soak_steps=2,
)


@dataclass(frozen=True)
class WanSetup:
    """The Wan parts: which model, and the shapes each part measures (memory and plan runs take `steps` steps)."""

    model: str
    speed_shapes: tuple[Shape, ...]
    step_repeats: int
    memory_shapes: tuple[Shape, ...]
    plan_shape: Shape
    plan_vram: str
    steps: int
    #: One more memory run with this step cache at this shape: its state is predicted from the shape.
    cache_shape: Shape
    cache: str = "pab"


#: 480p and 720p at 49 frames, then the released length; the 720p × 121 plan for a 24 GiB card.
WAN_GPU = WanSetup(
    model="real-size Wan 2.2 TI2V-5B, random weights", speed_shapes=((832, 480, 49), (1280, 704, 121)),
    step_repeats=3, memory_shapes=((832, 480, 49), (1280, 704, 49), (1280, 704, 121)), plan_shape=(1280, 704, 121),
    plan_vram="24GiB", steps=2, cache_shape=(1280, 704, 49),
)
WAN_DRY = WanSetup(
    model="tiny Wan 2.2 TI2V-5B (i2v.models.wan22.tiny), random weights", speed_shapes=((64, 64, 9), (128, 64, 9)),
    step_repeats=2, memory_shapes=((128, 64, 9),), plan_shape=(128, 128, 9), plan_vram="6GiB", steps=2,
    cache_shape=(128, 64, 9),
)


@dataclass(frozen=True)
class Target:
    """What parts 3 and 4 (and 7 and 8) run on: a model's plugin (its spec and cost model) and its shapes."""

    plugin: object
    memory_shapes: tuple[Shape, ...]
    memory_steps: int
    plan_shape: Shape
    plan_vram: str
    plan_steps: int
    #: (shape, step cache) measured after the memory shapes, or None.
    cache_item: tuple[Shape, str] | None = None


def log(message: str) -> None:
    print(f"[{time.perf_counter() - START:6.1f} s] {message}", flush=True)


def label(shape: Shape) -> str:
    return "×".join(map(str, shape))


class Guard:
    """A part's time budget: work items start only while it lasts; the ones skipped are reported. A generation
    still running at the cap (the budget plus OVERRUN_SHARE of it, never past `hard_end`) is cancelled."""

    def __init__(self, seconds: float, hard_end: float = float("inf")):
        now = time.perf_counter()
        self.deadline = now + seconds
        self.cap = min(self.deadline + OVERRUN_SHARE * seconds, hard_end)
        self.skipped: list[str] = []

    def past_cap(self) -> bool:
        return time.perf_counter() >= self.cap

    def allows(self, item: str) -> bool:
        if time.perf_counter() < self.deadline:
            return True
        self.skipped.append(item)
        log(f"  time guard: skipped {item}")
        return False


class Check:
    """The run's shared state: the setup, the results so far, and the backend, built once on first use."""

    def __init__(self, setup: Setup, budget_s: float, wan: WanSetup | None = None):
        self.setup = setup
        self.wan_setup = wan or (WAN_DRY if setup.device == "cpu" else WAN_GPU)
        self.cuda = setup.device == "cuda"
        self.deadline = START + budget_s
        #: No generation runs past this, whatever part it is in.
        self.hard_end = self.deadline + 20
        self.budget_s = budget_s
        self.results: dict = {}
        #: The running part's guard: check.generate cancels a generation past its cap.
        self.guard: Guard | None = None
        self._backend = None
        self._wan_backend = None
        self._info = None

    @property
    def info(self):
        """The device as the advisor probes it (the allocator setting is already in place)."""
        if self._info is None:
            self._info = probe_device(self.setup.device)
        return self._info

    @property
    def backend(self):
        """The I2VGen-XL backend on random weights, resident on the device: the product's own run path."""
        if self._backend is None:
            diffusers_logging.set_verbosity_error()  # "modules kept in float32" on every cast
            transformers_logging.set_verbosity_error()  # "CLIPImageProcessor requires torchvision"
            started = time.perf_counter()
            dtype = DTYPES[self.setup.dtype]
            components = real_size_components(dtype) if self.cuda else tiny_components()
            pipeline = I2VGenXLSampler(**components).to(self.setup.device, dtype)
            pipeline.set_progress_bar_config(disable=True)
            source = ModelSource(model_id=self.setup.model, folder=ROOT, revision=None, variant=None)
            self._backend = I2VGenXLBackend(pipeline, source, torch.device(self.setup.device), dtype)
            self.results["build_seconds"] = round(time.perf_counter() - started, 1)
            log(f"built {self.setup.model} on {self.setup.device} in {self.results['build_seconds']} s")
        return self._backend

    @property
    def wan_backend(self):
        """The Wan 2.2 backend on random weights, resident on the device. I2VGen-XL is dropped first, so neither
        its weights nor its cached blocks count in Wan's measurements."""
        if self._wan_backend is None:
            self._backend = None
            gc.collect()
            self.free()
            started = time.perf_counter()
            dtype = DTYPES[self.setup.dtype]
            pipeline = wan_pipeline(self.setup.device, dtype)
            source = ModelSource(model_id=self.wan_setup.model, folder=ROOT, revision=None, variant=None)
            self._wan_backend = WanBackend(pipeline, source, torch.device(self.setup.device), dtype)
            self.free()
            self.results["wan_build_seconds"] = round(time.perf_counter() - started, 1)
            log(f"built {self.wan_setup.model} on {self.setup.device} in {self.results['wan_build_seconds']} s")
        return self._wan_backend

    def target(self, wan: bool) -> Target:
        if wan:
            w = self.wan_setup
            return Target(
                WAN_PLUGIN, w.memory_shapes, w.steps, w.plan_shape, w.plan_vram, w.steps, (w.cache_shape, w.cache)
            )
        s = self.setup
        return Target(PLUGIN, s.memory_shapes, 2, s.plan_shape, s.plan_vram, 2)

    def request(self, shape: Shape, steps: int, plugin=PLUGIN, cache: str | None = None):
        """The request resolved by the model's spec into the run plan a backend receives."""
        width, height, frames = shape
        model = WAN_MODEL if plugin is WAN_PLUGIN else MODEL
        return plugin.spec.resolve(GenerationRequest(
            image=Path("gpu-check.png"), prompt=PROMPT, model=model, width=width, height=height, num_frames=frames,
            steps=steps, seed=0, refiner="none", cache=cache,
        ), (width, height))

    def plan_as_given(self, request):
        """The request as the user gave it: no offload, guidance in one pass, one frame decoded at a time."""
        return unconstrained_plan(request, self.info, margin=0.0, dtype=self.setup.dtype)

    def generate(self, request, hooks=None):
        """One run through the request's model's backend; cancelled at the next step once the part's cap passes."""
        pixels = np.random.default_rng(0).integers(0, 256, (request.height, request.width, 3), dtype=np.uint8)
        hooks = hooks or Hooks()
        if hooks.cancelled is None and self.guard is not None:
            hooks.cancelled = self.guard.past_cap
        backend = self.wan_backend if request.backend == WAN_PLUGIN.name else self.backend
        return backend.generate(request, Image.fromarray(pixels), hooks)

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()

    def free(self) -> None:
        free_memory(self.setup.device)

    def reset(self) -> None:
        """After a part, whatever it did: the allocator may use the whole card again, its cache is emptied."""
        if self.cuda:
            torch.cuda.set_per_process_memory_fraction(1.0)
        self.free()

    def outside_allocator(self) -> int | str:
        """Device memory in use but not PyTorch's: CUDA context, cuBLAS/cuDNN code, NCCL... (what the advisor's
        RUNTIME_OVERHEAD stands for)."""
        if not self.cuda:
            return NA
        free, total = torch.cuda.mem_get_info()
        return total - free - torch.cuda.memory_reserved()


def wan_pipeline(device: str, dtype: torch.dtype):
    """Wan 2.2 TI2V-5B's pipeline as the backend's loader leaves it: text encoder and transformer in `dtype` (the
    transformer's float32 modules kept in float32), the VAE in float32, UniPC with the released shift. At real size
    each model is built directly on the GPU by the cost model's own builders (`architecture.build_*`: random
    initialisation there takes seconds and no host copy of 12 B parameters); the tiny model for --dry-run."""
    from diffusers import UniPCMultistepScheduler, WanImageToVideoPipeline

    diffusers_logging.set_verbosity_error()
    transformers_logging.set_verbosity_error()
    torch.manual_seed(0)
    if device == "cpu":
        components = wan_tiny.tiny_components()
        components["text_encoder"].to(dtype)
        transformer = components["transformer"].to(dtype)
        wan_architecture._keep_in_fp32(transformer, transformer._keep_in_fp32_modules)
    else:
        components = dict(
            tokenizer=wan_tiny.tiny_tokenizer(), scheduler=UniPCMultistepScheduler(**wan_tiny.SCHEDULER_CONFIG),
            text_encoder=wan_architecture.build_text_encoder(dtype, device),
            transformer=wan_architecture.build_transformer(dtype, device),
            vae=wan_architecture.build_vae(torch.float32, device), transformer_2=None, image_encoder=None,
            image_processor=None, boundary_ratio=None, expand_timesteps=True,
        )
    pipeline = WanImageToVideoPipeline(**components).to(device)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


def wan_call_inputs(transformer, shape: Shape, dtype: torch.dtype, device: str) -> dict:
    """One transformer call's arguments as the pipeline makes them (`architecture.transformer_inputs`: batch 1, a
    timestep per token, 512 prompt embeddings) at this transformer's text width; on a real device, filled."""
    inputs = wan_architecture.transformer_inputs(*shape, dtype=dtype, device=device)
    prompt = inputs["encoder_hidden_states"]
    inputs["encoder_hidden_states"] = torch.empty(
        (*prompt.shape[:2], transformer.config.text_dim), device=device, dtype=dtype
    )
    if device != "meta":
        inputs["hidden_states"].normal_()
        inputs["encoder_hidden_states"].normal_()
        inputs["timestep"].fill_(999.0)
    return inputs


class StageMeter:
    """An on_stage callback: seconds per stage (device synchronised at each boundary) and, on CUDA, what was
    allocated when the stage started and its peak allocated / reserved bytes (peak stats reset per stage)."""

    def __init__(self, check: Check):
        self.check = check
        self.stages: dict[str, dict] = {}
        self._current: str | None = None
        self._started = 0.0

    def __call__(self, stage: str) -> None:
        self.finish()
        cuda = self.check.cuda
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        self.stages[stage] = {"start_allocated": torch.cuda.memory_allocated() if cuda else NA}
        self._current = stage
        self._started = time.perf_counter()

    def finish(self) -> None:
        if self._current is None:
            return
        self.check.sync()
        cuda = self.check.cuda
        self.stages[self._current].update(
            seconds=round(time.perf_counter() - self._started, 4),
            peak_allocated=torch.cuda.max_memory_allocated() if cuda else NA,
            peak_reserved=torch.cuda.max_memory_reserved() if cuda else NA,
        )
        self._current = None


def timed(check: Check, call: Callable[[], object], *, repeats: int, warmup: int = 2) -> list[float]:
    """Seconds per call after warm-up: CUDA events on a GPU (the host runs ahead of the device), the clock on CPU."""
    for _ in range(warmup):
        call()
    check.sync()
    seconds = []
    for _ in range(repeats):
        if check.cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            call()
            end.record()
            end.synchronize()
            seconds.append(start.elapsed_time(end) / 1000)
        else:
            started = time.perf_counter()
            call()
            seconds.append(time.perf_counter() - started)
    return seconds


def attention_kernels(check: Check, call: Callable[[], object]) -> dict[str, int]:
    """Which SDPA implementation ran, from the profiler's op names (aten::_scaled_dot_product_flash_attention,
    _efficient_, _cudnn_, _attention_math, ...) with how often each ran."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profiler:
        call()
        check.sync()
    return {
        event.key.removeprefix("aten::"): event.count
        for event in profiler.key_averages()
        if event.key.startswith("aten::_scaled_dot_product")
    }


def ratio(part: float | None, whole: float | int | str | None) -> float | None:
    """part / whole, or None where either is unknown (no nominal peak, a CPU counter)."""
    return round(part / whole, 4) if isinstance(whole, (int, float)) and whole and part is not None else None


# -- 1. device ----------------------------------------------------------------------------------------------


def part_device(check: Check, guard: Guard, out: dict) -> None:
    info = check.info
    out.update(
        name=info.name, kind=info.kind, total_bytes=info.total_bytes, capability=info.capability, probe=info.source,
        driver=_driver_version() if check.cuda else NA, cuda=torch.version.cuda if check.cuda else NA,
        cudnn=torch.backends.cudnn.version() if check.cuda else NA, allocator=ALLOCATOR_SETTING,
        versions={name: _version(name) for name in ("torch", "diffusers", "transformers", "accelerate")},
        python=sys.version.split()[0], nominal_tflops=_nominal_tflops(info),
    )
    log(f"device: {info.name}, driver {out['driver']}, CUDA {out['cuda']}, torch {out['versions']['torch']}")

    dtype = DTYPES[check.setup.dtype]
    query = torch.randn(check.setup.attention_query, device=check.setup.device, dtype=dtype)
    out["attention_query"] = list(check.setup.attention_query)
    out["attention"] = attention_kernels(
        check, lambda: torch.nn.functional.scaled_dot_product_attention(query, query, query)
    )
    log(f"  SDPA picks {out['attention']} for a {dtype} query of {list(query.shape)}")
    del query

    size, inner = check.setup.matmul_size, check.setup.matmul_inner
    a, b = (torch.randn(size, size, device=check.setup.device, dtype=dtype) for _ in range(2))
    product = torch.empty_like(a)

    def matmuls() -> None:
        for _ in range(inner):
            torch.matmul(a, b, out=product)

    repeats = 7
    seconds = statistics.median(timed(check, matmuls, repeats=repeats))
    out["matmul"] = dict(size=size, dtype=check.setup.dtype, calls=inner, repeats=repeats, median_seconds=seconds)
    out["measured_tflops"] = float(f"{2 * size**3 * inner / seconds / 1e12:.4g}")
    out["measured_of_nominal"] = ratio(out["measured_tflops"], out["nominal_tflops"])
    out["outside_allocator_bytes"] = check.outside_allocator()
    log(f"  {size}² {check.setup.dtype} matmul: {out['measured_tflops']} TFLOP/s (nominal {out['nominal_tflops']})")


def step_speed(shape: Shape, seconds: list[float], flops: float, peak: float | None, nominal: float | None,
               kernels: object) -> dict:
    """One denoiser step's timing row, for any model: median seconds, TFLOP/s and its share of both peaks."""
    median = statistics.median(seconds)
    achieved = flops / median / 1e12
    return dict(
        shape=label(shape), seconds=[round(s, 4) for s in seconds], median_seconds=round(median, 4),
        flops=flops, tflops=achieved, of_measured_peak=ratio(achieved, peak),
        of_nominal_peak=ratio(achieved, nominal), attention=kernels,
    )


def _nominal_tflops(info) -> float | None:
    """The advisor's table of dense half-precision peaks as sold; None for a card it does not list."""
    if info.kind == "cpu":
        return None
    value = device_tflops(info)
    return None if value == DEFAULT_TFLOPS.get(info.kind) else value


def _driver_version() -> str | None:
    try:
        result = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=20, check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip().splitlines()[0] if result.stdout.strip() else None


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


# -- 2. speed -----------------------------------------------------------------------------------------------


def part_speed(check: Check, guard: Guard, out: dict) -> None:
    # One whole run first: it also warms up every kernel the steps below use.
    request = check.request(check.setup.run_shape, check.setup.run_steps)
    plan = check.plan_as_given(request)
    meter = StageMeter(check)
    started = time.perf_counter()
    check.generate(plan.run, Hooks(on_stage=meter))
    meter.finish()
    seconds = round(time.perf_counter() - started, 3)
    out["run"] = dict(
        shape=label(check.setup.run_shape), steps=check.setup.run_steps, total_seconds=seconds,
        stages={stage: entry["seconds"] for stage, entry in meter.stages.items()},
        predicted_seconds=round(predicted_seconds(plan, plan.estimate(), check.info), 3),
    )
    log(f"speed: whole run {out['run']['shape']}, {check.setup.run_steps} steps: {out['run']['stages']}")

    unet = check.backend.pipeline.unet
    set_ff_chunking(unet, False)
    with torch.device("meta"):
        twin = type(unet).from_config(unet.config).to(unet.dtype).eval()  # FLOPs of this very config, no memory
    peak = check.results.get("device", {}).get("measured_tflops")
    nominal = _nominal_tflops(check.info)
    out["steps"] = []
    for shape in check.setup.speed_shapes:
        if not guard.allows(f"UNet step {label(shape)}"):
            continue
        flops = unet_step_flops(*shape, batch=2, unet=twin)
        inputs = unet_step_inputs(unet, *shape, batch=2, device=check.setup.device)
        for value in inputs.values():
            if isinstance(value, torch.Tensor) and value.is_floating_point():
                value.normal_()
        with torch.inference_mode():
            seconds = timed(check, lambda: unet(**inputs), repeats=check.setup.step_repeats)
            kernels = attention_kernels(check, lambda: unet(**inputs))
        del inputs
        row = step_speed(shape, seconds, flops, peak, nominal, kernels)
        out["steps"].append(row)
        log(f"  UNet step {row['shape']}: {row['median_seconds']:.3g} s, {flops / 1e12:.3g} TFLOP, {row['tflops']:.3g} "
            f"TFLOP/s ({_percent(row['of_nominal_peak'])} of nominal, {_percent(row['of_measured_peak'])} of measured peak)")
    fractions = [step["of_nominal_peak"] for step in out["steps"] if step["of_nominal_peak"] is not None]
    calibrated = round(statistics.median(fractions), 2) if fractions else None
    out["utilization"] = dict(current=UTILIZATION, calibrated=calibrated if check.cuda else NA)


# -- 3. memory ----------------------------------------------------------------------------------------------


def part_memory(check: Check, guard: Guard, out: dict, wan: bool = False) -> None:
    target = check.target(wan)
    out.update(steps=target.memory_steps, shapes=[])
    items = [(shape, None) for shape in target.memory_shapes] + ([target.cache_item] if target.cache_item else [])
    for shape, cache in items:
        name = label(shape) + (f", {cache} cache" if cache else "")
        if not guard.allows(f"memory {name}"):
            continue
        request = check.request(shape, target.memory_steps, target.plugin, cache)
        plan = check.plan_as_given(request)
        estimate = plan.estimate()
        if cache is None:
            out["constants"] = _constants_used(estimate)
        check.free()
        meter = StageMeter(check)
        check.generate(plan.run, Hooks(on_stage=meter))
        meter.finish()
        outside = check.outside_allocator()
        stages = {stage: _compare(estimate.stages[stage], entry, outside) for stage, entry in meter.stages.items()}
        out["shapes"].append(dict(
            shape=name, cache=cache, predicted_peak_bytes=estimate.peak_bytes, predicted_peak_stage=estimate.peak_stage,
            outside_allocator_bytes=outside, stages=stages,
        ))
        denoise = stages["denoise"]
        log(f"memory {name}: denoise predicted {_bytes(denoise['predicted_total'])} (cache state "
            f"{_bytes(denoise['predicted_state'])}), measured {_bytes(denoise['device_peak'])} "
            f"({_percent(denoise['error'], signed=True)})")
    uncached = [shape for shape in out["shapes"] if shape["cache"] is None]  # the fit is for the activations' rule
    out["calibration"] = _calibrate(uncached, out.get("constants", {})) if check.cuda else NA


def _constants_used(estimate) -> dict:
    """The overhead and fragmentation the advisor applied (its defaults, or I2V_* overrides), read off its output."""
    stage = estimate.stages["denoise"]
    spread = stage.total_bytes - stage.weights_bytes - estimate.overhead_bytes
    fragmentation = round(spread / stage.activation_bytes - 1, 3)
    return dict(runtime_overhead_bytes=estimate.overhead_bytes, fragmentation=fragmentation)


def _compare(predicted, measured: dict, outside: int | str) -> dict:
    """One stage: the advisor's weights + activations and cache state (+ fragmentation + overhead) against the
    device's peak, which is PyTorch's peak reserved plus the memory outside its allocator. Measured activations
    (peak allocated less what the stage began with) include a cache's state, so they are compared with both."""
    entry = dict(
        predicted_weights=predicted.weights_bytes, predicted_activations=predicted.activation_bytes,
        predicted_state=predicted.state_bytes, predicted_total=predicted.total_bytes, seconds=measured["seconds"],
        start_allocated=measured["start_allocated"],
        peak_allocated=measured["peak_allocated"], peak_reserved=measured["peak_reserved"],
        measured_activations=NA, device_peak=NA, error=None, activation_error=None,
    )
    if isinstance(outside, int):
        entry["measured_activations"] = measured["peak_allocated"] - measured["start_allocated"]
        entry["device_peak"] = measured["peak_reserved"] + outside
        entry["error"] = ratio(predicted.total_bytes - entry["device_peak"], entry["device_peak"])
        entry["activation_error"] = ratio(
            predicted.activation_bytes + predicted.state_bytes - entry["measured_activations"],
            entry["measured_activations"],
        )
    return entry


def _calibrate(shapes: list[dict], constants: dict) -> dict:
    """Fit the advisor's rule, device peak = weights + activations × (1 + FRAGMENTATION) + RUNTIME_OVERHEAD, to
    the denoising stage (the peak of every shape) by least squares over the shapes measured."""
    points = [
        (s["predicted_activations"], s["device_peak"] - s["predicted_weights"] - s["predicted_activations"])
        for s in (shape["stages"]["denoise"] for shape in shapes)
    ]
    if not points:
        return dict(error="no shape measured")
    activations, rest = np.array(points, dtype=float).T
    # One shape (or equal activations) cannot separate the two: keep the current fragmentation, fit the overhead.
    slope = np.polyfit(activations, rest, 1)[0] if np.ptp(activations) > 0 else constants["fragmentation"]
    fragmentation = max(0.0, float(slope))
    overhead = max(0, int((rest - fragmentation * activations).mean()))  # the least-squares intercept
    residuals = [int(r - overhead - fragmentation * a) for a, r in points]
    gib = round(overhead / GiB, 2)
    return dict(
        runtime_overhead_bytes=overhead, fragmentation=round(fragmentation, 3), residual_bytes=residuals,
        code=f'RUNTIME_OVERHEAD_BYTES = {{"cuda": int({gib} * GiB), "mps": GiB // 2, "cpu": GiB // 2}}\n'
             f"FRAGMENTATION = {round(fragmentation, 3)}",
        environment=f"I2V_RUNTIME_OVERHEAD={gib}GiB I2V_FRAGMENTATION={round(fragmentation, 3)}",
    )


# -- 4. the 24 GiB plan -------------------------------------------------------------------------------------


def part_plan24(check: Check, guard: Guard, out: dict, wan: bool = False) -> None:
    setup, target = check.setup, check.target(wan)
    request = check.request(target.plan_shape, target.plan_steps, target.plugin)
    info = probe_device(setup.device, vram=target.plan_vram)
    plan = make_plan(request, info, dtype=setup.dtype)
    out.update(
        shape=label(target.plan_shape), vram=target.plan_vram, steps=target.plan_steps, planned=describe_plan(plan.run),
        changes=list(plan.changes), predicted_fits=plan.fits, predicted_peak_bytes=plan.predicted_peak_bytes,
        budget_bytes=plan.budget_bytes, warnings=list(plan.warnings),
    )
    log(f"plan24: {label(target.plan_shape)} for {target.plan_vram}: {describe_plan(plan.run)}, predicted "
        f"{_bytes(plan.predicted_peak_bytes)}, fits={plan.fits}")
    for change in plan.changes:
        log(f"  • {change}")
    tried, meters = [plan], []
    # One Hooks for every attempt: the stage it was in when memory ran out is the one the ladder steps down for.
    hooks = Hooks(on_stage=lambda stage: meters[-1](stage))

    def attempt(rung):
        tried.append(rung)
        meters.append(StageMeter(check))
        result = check.generate(rung.run, hooks)
        meters[-1].finish()
        return result

    check.free()
    if check.cuda:
        # The CUDA context lives outside the allocator's cap, so the cap leaves room for it as a real card must.
        total = torch.cuda.get_device_properties(0).total_memory
        cap = parse_size(target.plan_vram) - check.outside_allocator()
        out["allocator_cap_bytes"] = cap
        torch.cuda.set_per_process_memory_fraction(min(1.0, cap / total))
    else:
        out["allocator_cap_bytes"] = NA
    try:
        _, retries = run_with_recovery(plan, attempt, hooks=hooks)
        out.update(ran=True, retries=retries)
    except MemoryExhaustedError as error:
        out.update(ran=False, retries=error.retries, error=str(error))
    finally:
        check.reset()
    final = tried[-1]
    estimate = final.estimate()
    outside = check.outside_allocator()
    out.update(
        final_plan=describe_plan(final.run), final_predicted_peak_bytes=estimate.peak_bytes,
        stages={stage: _compare(estimate.stages[stage], entry, outside) for stage, entry in meters[-1].stages.items()}
        if out["ran"] else {},
    )
    peaks = [entry["device_peak"] for entry in out["stages"].values()]
    out["measured_peak_bytes"] = max(peaks) if peaks and all(isinstance(p, int) for p in peaks) else NA
    log(f"  ran={out['ran']} after {len(out['retries'])} retries; peak {_bytes(out['measured_peak_bytes'])} vs "
        f"predicted {_bytes(estimate.peak_bytes)}")


# -- 5. soak ------------------------------------------------------------------------------------------------


def part_soak(check: Check, guard: Guard, out: dict) -> None:
    setup = check.setup
    request = check.request(setup.soak_shape, setup.soak_steps)
    run = check.plan_as_given(request).run
    check.free()
    out.update(shape=label(setup.soak_shape), steps=setup.soak_steps, runs=[])
    for index in range(setup.soak_runs):
        if not guard.allows(f"soak run {index + 1}"):
            break
        started = time.perf_counter()
        check.generate(run)
        gc.collect()
        check.sync()
        out["runs"].append(dict(
            run=index + 1, seconds=round(time.perf_counter() - started, 3),
            allocated=torch.cuda.memory_allocated() if check.cuda else NA,
            reserved=torch.cuda.memory_reserved() if check.cuda else NA,
        ))
        log(f"soak run {index + 1}: {out['runs'][-1]}")
    out["verdict"] = _soak_verdict(out["runs"]) if check.cuda else NA


def _soak_verdict(runs: list[dict]) -> dict:
    """Flat: allocated memory after the last run within 32 MiB of the first, reserved within 256 MiB of the
    second (the first run may still grow the cache)."""
    if len(runs) < 2:
        return dict(flat=None, reason="fewer than two runs")
    allocated = runs[-1]["allocated"] - runs[0]["allocated"]
    reserved = runs[-1]["reserved"] - runs[1]["reserved"]
    flat = allocated <= 32 * 2**20 and reserved <= 256 * 2**20
    return dict(flat=flat, allocated_growth=allocated, reserved_growth=reserved)


# -- 6. Wan speed -------------------------------------------------------------------------------------------


def part_wan_speed(check: Check, guard: Guard, out: dict) -> None:
    """One Wan denoising step as the backend runs it: guidance is two batch-1 transformer calls (conditional,
    then unconditional), so a step is two calls. FLOPs and the activation peak of one call are traced on a meta
    twin of this very transformer (the cost model's tracer); the measured activation peak is CUDA's peak
    allocated during one call less what was allocated before it."""
    transformer = check.wan_backend.pipeline.transformer
    dtype = DTYPES[check.setup.dtype]
    with torch.device("meta"):
        twin = type(transformer).from_config(transformer.config).to(dtype).eval()
    wan_architecture._keep_in_fp32(twin, twin._keep_in_fp32_modules)
    peak = check.results.get("device", {}).get("measured_tflops")
    nominal = _nominal_tflops(check.info)
    passes = 2
    out.update(passes_per_step=passes, steps=[])
    for shape in check.wan_setup.speed_shapes:
        if not guard.allows(f"Wan step {label(shape)}"):
            continue
        traced = trace_call(lambda: twin(**wan_call_inputs(twin, shape, dtype, "meta")))
        flops = passes * traced.flops
        inputs = wan_call_inputs(transformer, shape, dtype, check.setup.device)

        def step() -> None:
            for _ in range(passes):
                transformer(**inputs)

        with torch.inference_mode():
            seconds = timed(check, step, repeats=check.wan_setup.step_repeats)
            measured_activation: int | str = NA
            if check.cuda:
                torch.cuda.reset_peak_memory_stats()
                before = torch.cuda.memory_allocated()
                transformer(**inputs)
                check.sync()
                measured_activation = torch.cuda.max_memory_allocated() - before
            kernels = attention_kernels(check, lambda: transformer(**inputs))
        del inputs
        row = step_speed(shape, seconds, flops, peak, nominal, kernels)
        out["steps"].append(dict(
            row, predicted_call_activation_bytes=traced.peak_bytes, measured_call_activation_bytes=measured_activation,
            call_activation_error=ratio(traced.peak_bytes - measured_activation, measured_activation)
            if check.cuda else None,
        ))
        log(f"  Wan step {row['shape']}: {row['median_seconds']:.3g} s, {flops / 1e12:.3g} TFLOP, {row['tflops']:.3g} TFLOP/s "
            f"({_percent(row['of_nominal_peak'])} of nominal); one call's activations "
            f"{_bytes(measured_activation)} measured vs {_bytes(traced.peak_bytes)} traced")


# -- running the parts, writing the outputs ------------------------------------------------------------------


PART_FUNCTIONS = {
    "device": part_device, "speed": part_speed, "memory": part_memory, "plan24": part_plan24, "soak": part_soak,
    "wan_speed": part_wan_speed,
    "wan_memory": lambda check, guard, out: part_memory(check, guard, out, wan=True),
    "wan_plan24": lambda check, guard, out: part_plan24(check, guard, out, wan=True),
}


def run_part(check: Check, name: str) -> dict:
    """One part under its time guard; any exception becomes the part's status and error, never the run's."""
    out: dict = {}
    left = check.deadline - time.perf_counter()
    if left <= 0:
        return dict(status="skipped", reason="the whole run's time budget is spent", seconds=0)
    guard = check.guard = Guard(min(PART_SHARE[name] * check.budget_s, left), check.hard_end)
    log(f"== part {PARTS.index(name) + 1}: {name}")
    started = time.perf_counter()
    status, error = "ok", None
    for step in (lambda: PART_FUNCTIONS[name](check, guard, out), check.reset):
        try:
            step()
        except GenerationCancelled as cut:
            status = "cut"
            error = (f"time cap reached {round(time.perf_counter() - started)} s into the part: the running "
                     f"generation was cancelled after step {cut.step} of {cut.total}")
            log(f"  part {name} cut: {error}")
        except Exception as caught:  # noqa: BLE001 - a failed part is reported, the others still run
            status, error = "failed", error or f"{type(caught).__name__}: {caught}".strip()[:2000]
            traceback.print_exc()
            sys.stderr.flush()
            log(f"  part {name} failed: {error.splitlines()[0]}")
    check.guard = None
    if status == "ok" and guard.skipped:
        status = "partial"
    seconds = round(time.perf_counter() - started, 1)
    return dict(status=status, error=error, skipped=guard.skipped, seconds=seconds, **out)


def write_outputs(check: Check, out_dir: Path, dry_run: bool) -> str:
    out_dir.mkdir(parents=True, exist_ok=True)
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    document = dict(
        dry_run=dry_run, setup=asdict(check.setup), wan_setup=asdict(check.wan_setup), created=created,
        seconds=round(time.perf_counter() - START, 1), build_seconds=check.results.get("build_seconds"),
        wan_build_seconds=check.results.get("wan_build_seconds"),
        parts={name: check.results[name] for name in PARTS if name in check.results},
    )
    (out_dir / "gpu.json").write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")
    markdown = render_markdown(document)
    (out_dir / "gpu.md").write_text(markdown, encoding="utf-8")
    return markdown


def _bytes(value) -> str:
    return format_bytes(value) if isinstance(value, int) else str(value)


def _percent(value, signed: bool = False) -> str:
    if not isinstance(value, (int, float)):
        return "—"
    return f"{value:+.0%}" if signed else f"{value:.0%}"


def _table(headers: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return [*lines, ""]


def render_markdown(document: dict) -> str:
    """The same results as gpu.json, as tables a person reads."""
    setup, parts = document["setup"], document["parts"]
    lines = [
        "# i2v on a GPU: measured",
        "",
        f"Written by `bench/gpu_check.py` on {document['created']} in {document['seconds']} s; parts 1-5: "
        f"{setup['model']}, {setup['dtype']}, built in {document['build_seconds']} s; parts 6-8: "
        f"{document['wan_setup']['model']}, built in {document['wan_build_seconds']} s. Everything under "
        "*measured* comes from this run; *predicted* is the advisor's memory model and FLOPs traced on the meta "
        "device.",
        "",
    ]
    if document["dry_run"]:
        lines += ["**Dry run on the CPU with the tiny model: these numbers say nothing about any GPU.**", ""]
    lines += ["| part | status | seconds | error / skipped |", "|---|---|---|---|"]
    for name in PARTS:
        part = parts.get(name, dict(status="not selected"))
        problem = part.get("error") or ", ".join(part.get("skipped") or []) or part.get("reason") or ""
        lines.append(f"| {PARTS.index(name) + 1}. {name} | {part['status']} | {part.get('seconds', '')} | {problem} |")
    lines.append("")
    renders = (
        ("device", _md_device), ("speed", _md_speed), ("memory", lambda part: _md_memory(part, "3. Memory")),
        ("plan24", lambda part: _md_plan24(part, "4.")), ("soak", _md_soak), ("wan_speed", _md_wan_speed),
        ("wan_memory", lambda part: _md_memory(part, "7. Wan 2.2 TI2V-5B: memory")),
        ("wan_plan24", lambda part: _md_plan24(part, "8. Wan 2.2 TI2V-5B:")),
    )
    for name, render in renders:
        if name in parts and parts[name]["status"] in ("ok", "partial", "failed", "cut"):
            try:
                lines += render(parts[name])
            except (KeyError, TypeError, ValueError) as error:  # a part that failed early has fields missing
                lines += [f"({name}: incomplete, {type(error).__name__}: {error})", ""]
    return "\n".join(lines)


def _md_device(part: dict) -> list[str]:
    versions = ", ".join(f"{name} {version}" for name, version in part["versions"].items())
    matmul = part["matmul"]
    rows = [
        ["device", f"{part['name']} ({_bytes(part['total_bytes'])}, capability {part['capability']})"],
        ["driver / CUDA / cuDNN", f"{part['driver']} / {part['cuda']} / {part['cudnn']}"],
        ["versions", f"Python {part['python']}, {versions}"],
        ["allocator", part["allocator"]],
        ["SDPA kernel (query " + "×".join(map(str, part["attention_query"])) + ")", _kernels(part["attention"])],
        ["matmul peak, measured",
         f"{part['measured_tflops']} TFLOP/s ({matmul['size']}², {matmul['dtype']}, median of {matmul['repeats']})"],
        ["dense peak, nominal", f"{part['nominal_tflops']} TFLOP/s" if part["nominal_tflops"] else "not in the table"],
        ["measured / nominal", _percent(part["measured_of_nominal"])],
        ["memory outside PyTorch's allocator", _bytes(part["outside_allocator_bytes"])],
    ]
    return ["## 1. Device", "", *_table(["what", "value"], rows)]


def _md_speed(part: dict) -> list[str]:
    lines = ["## 2. Speed", "", "One denoising step (one UNet call, guidance as batch 2), after warm-up, median:", ""]
    rows = [
        [s["shape"], s["median_seconds"], f"{s['flops'] / 1e12:.3g}", f"{s['tflops']:.3g}",
         _percent(s["of_measured_peak"]), _percent(s["of_nominal_peak"]), _kernels(s["attention"])]
        for s in part.get("steps", [])
    ]
    lines += _table(["width×height×frames", "s/step", "TFLOP/step (predicted)", "TFLOP/s", "of measured peak",
                     "of nominal peak", "attention kernels"], rows)
    run = part["run"]
    lines += [f"One whole run, {run['shape']}, {run['steps']} steps, through the sampler "
              f"(advisor predicted {run['predicted_seconds']} s):", ""]
    lines += _table(["stage", "seconds"], [*[[stage, seconds] for stage, seconds in run["stages"].items()],
                                           ["total", run["total_seconds"]]])
    utilization = part["utilization"]
    lines += [f"`UTILIZATION` in src/i2v/advisor/report.py: {utilization['current']} now, measured "
              f"{utilization['calibrated']} (median share of the nominal peak).", ""]
    return lines


def _md_memory(part: dict, title: str) -> list[str]:
    lines = [f"## {title}: predicted against measured, per stage ({part['steps']} steps)", "",
             "Device peak = PyTorch's peak reserved + memory outside its allocator (CUDA context, libraries); "
             "error = (predicted − device peak) / device peak, negative when the advisor under-predicts. Reserved "
             "memory is not emptied between stages, so a later stage's peak reserved includes blocks an earlier "
             "one cached; measured activations = peak allocated − allocated when the stage began, compared with "
             "predicted activations + cache state.", ""]
    rows = []
    for shape in part.get("shapes", []):
        for stage, entry in shape["stages"].items():
            rows.append([
                shape["shape"], stage, _bytes(entry["predicted_weights"]), _bytes(entry["predicted_activations"]),
                _bytes(entry["predicted_state"]), _bytes(entry["predicted_total"]), _bytes(entry["peak_allocated"]),
                _bytes(entry["peak_reserved"]), _bytes(entry["device_peak"]), _percent(entry["error"], True),
                _bytes(entry["measured_activations"]),
                _percent(entry["activation_error"], True),
            ])
    lines += _table(["shape", "stage", "pred. weights", "pred. activations", "pred. cache state", "pred. total",
                     "peak allocated", "peak reserved", "device peak", "error", "meas. activations",
                     "activation error"], rows)
    calibration = part["calibration"]
    constants = part.get("constants", {})
    if constants:
        lines.append(f"Constants used: overhead {_bytes(constants['runtime_overhead_bytes'])}, fragmentation "
                     f"{constants['fragmentation']}.")
    if isinstance(calibration, dict) and "code" in calibration:
        lines += ["", "Calibrated (least squares over the denoising stages), for src/i2v/models/cost.py:", "",
                  "```python", calibration["code"], "```", "", f"or `{calibration['environment']}`.", ""]
    else:
        lines += ["", f"Calibration: {calibration}", ""]
    return lines


def _md_plan24(part: dict, title: str) -> list[str]:
    lines = [f"## {title} {part['shape']} planned for a {part['vram']} card, {part['steps']} steps", "",
             f"Plan: {part['planned']}; predicted {_bytes(part['predicted_peak_bytes'])} of a "
             f"{_bytes(part['budget_bytes'])} budget, fits: {part['predicted_fits']}. Allocator capped at "
             f"{_bytes(part['allocator_cap_bytes'])}.", ""]
    lines += [f"- {change}" for change in part["changes"]] or ["- no change needed"]
    lines += ["", f"Ran: {part['ran']}, after {len(part['retries'])} out-of-memory retries; final plan "
              f"{part['final_plan']}; measured peak {_bytes(part['measured_peak_bytes'])} vs predicted "
              f"{_bytes(part['final_predicted_peak_bytes'])}.", ""]
    lines += [f"- retry {r['attempt']} ({r['stage']}): {r['rung']}" for r in part["retries"]]
    rows = [[stage, _bytes(e["predicted_total"]), _bytes(e["peak_allocated"]), _bytes(e["device_peak"]),
             _percent(e["error"], True), e["seconds"]] for stage, e in part["stages"].items()]
    return [*lines, "", *_table(["stage", "predicted", "peak allocated", "device peak", "error", "seconds"], rows)]


def _md_wan_speed(part: dict) -> list[str]:
    lines = ["## 6. Wan 2.2 TI2V-5B: speed", "",
             f"One denoising step ({part['passes_per_step']} batch-1 transformer calls: guidance as the backend runs "
             "it), after warm-up, median; one call's activation peak traced on the meta device against CUDA's peak "
             "allocated during one call:", ""]
    rows = [
        [s["shape"], s["median_seconds"], f"{s['flops'] / 1e12:.3g}", f"{s['tflops']:.3g}",
         _percent(s["of_measured_peak"]), _percent(s["of_nominal_peak"]), _bytes(s["predicted_call_activation_bytes"]),
         _bytes(s["measured_call_activation_bytes"]), _percent(s["call_activation_error"], True),
         _kernels(s["attention"])]
        for s in part.get("steps", [])
    ]
    return lines + _table(["width×height×frames", "s/step", "TFLOP/step (predicted)", "TFLOP/s", "of measured peak",
                           "of nominal peak", "call activations, traced", "measured", "error", "attention kernels"],
                          rows)


def _md_soak(part: dict) -> list[str]:
    lines = [f"## 5. Soak: {len(part['runs'])} runs of {part['shape']}, {part['steps']} steps", ""]
    rows = [[r["run"], r["seconds"], _bytes(r["allocated"]), _bytes(r["reserved"])] for r in part["runs"]]
    lines += _table(["run", "seconds", "allocated after", "reserved after"], rows)
    verdict = part["verdict"]
    if isinstance(verdict, dict) and "allocated_growth" in verdict:
        verdict = (f"{'flat' if verdict['flat'] else 'NOT flat'}: allocated {_bytes(verdict['allocated_growth'])} "
                   f"from run 1 to the last, reserved {_bytes(verdict['reserved_growth'])} from run 2")
    return [*lines, f"Memory: {verdict}", ""]


def _kernels(kernels: dict[str, int]) -> str:
    return ", ".join(f"{name} ×{count}" for name, count in kernels.items()) or "none seen"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "docs", help="folder for gpu.md and gpu.json")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {','.join(PARTS)}")
    parser.add_argument("--dry-run", action="store_true", help="CPU, tiny model, tiny shapes: seconds, for tests")
    parser.add_argument("--budget-s", type=float, default=440, help="time for the whole run; parts share it")
    args = parser.parse_args()
    selected = [name.strip() for name in args.parts.split(",") if name.strip()]
    unknown = sorted(set(selected) - set(PARTS))
    if unknown:
        parser.error(f"unknown part(s) {', '.join(unknown)}; choose from {', '.join(PARTS)}")
    configure_allocator()  # expandable segments, as i2v runs: only possible before CUDA starts
    if not args.dry_run and not torch.cuda.is_available():
        print("no CUDA device visible: run on a GPU, or use --dry-run", file=sys.stderr)
        return 2
    check = Check(DRY if args.dry_run else GPU, args.budget_s)
    log(f"gpu_check: parts {', '.join(selected)}; {check.setup.model} on {check.setup.device}; out {args.out}")
    markdown = ""
    for name in PARTS:
        if name in selected:
            check.results[name] = run_part(check, name)
            log(f"  part {name}: {check.results[name]['status']} in {check.results[name]['seconds']} s")
            markdown = write_outputs(check, args.out, args.dry_run)
    print(markdown, flush=True)
    log(f"wrote {args.out / 'gpu.md'} and {args.out / 'gpu.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
