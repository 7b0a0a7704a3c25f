"""`i2v` command line. Bad input exits with code 2 and one line saying what to change, never a traceback."""

from __future__ import annotations

import functools
import json
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from typer.core import TyperArgument, TyperCommand, TyperGroup

from i2v.cli_advice import FLAGS, tier_request, render_recommendation
from i2v.cli_advice import register as register_advice
from i2v.errors import GenerationCancelled, I2VError
from i2v.models.base import STAGES
from i2v.refine.base import not_understood
from i2v.request import GenerationRequest, default_model, describe_validation_error

if TYPE_CHECKING:
    from i2v.models.spec import ModelSpec


class _PlainHelp:
    """Help shown as written. Typer reads help as Rich markup, so each `[default: …]` and `[env …]` we wrote was
    taken for a style tag and vanished (leaving "mp4, webm or gif ."); it also shows `<bool>` beside flags, which
    take no value, and writes arguments as `{image}` in usage lines. Here help is plain text, flags show no type,
    and arguments read IMAGE, or [MODEL] when optional, as the commands' own help names them."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.help = escape(self.help) if self.help else self.help
        for param in self.params:
            param.help = escape(param.help) if param.help else param.help  # type: ignore[attr-defined]
            if isinstance(param, TyperArgument) and param.metavar is None:
                param.metavar = param.name.upper()  # type: ignore[union-attr]
            elif getattr(param, "is_flag", False):
                param.metavar = ""

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)  # type: ignore[misc]
        if option is not None:
            option.metavar = ""
        return option


class Command(_PlainHelp, TyperCommand):
    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, TyperArgument):
                name = param.metavar + ("..." if param.nargs != 1 else "")
                pieces.append(name if param.required else f"[{name}]")
        return pieces


class Group(_PlainHelp, TyperGroup):
    pass


app = typer.Typer(
    cls=Group,
    help="i2v: turn one still image and a motion description into a short video.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
models_app = typer.Typer(cls=Group, help="List and download models.", no_args_is_help=True)
app.add_typer(models_app, name="models")

console = Console(stderr=True)
EXIT_BAD_INPUT = 2
EXIT_CANCELLED = 130


#: The progress bar's short word for each stage of the one vocabulary (models.base.STAGES).
STAGE_LABELS = dict(zip(STAGES, ("loading", "refining", "encoding", "denoising", "rendering", "decoding", "writing"), strict=True))


def _per_model(text: str, describe: Callable[[ModelSpec], str | None]) -> str:
    """Help text with each model's own rule for an option, read from the specs (never restated here)."""
    from i2v.models.registry import known_models

    rules = []
    for _, plugin in known_models().values():
        rule, name = describe(plugin.spec), plugin.spec.label.split(" (")[0]
        rules.append(f"{name}: {rule}" if rule else f"{name}: not used")
    return f"{text} Per model — " + "; ".join(rules) + "."


def _range(rule: Any, unit: str = "") -> str | None:
    return f"{rule.min:g}-{rule.max:g}{unit}, default {rule.default:g}" if rule is not None else None


HELP = {
    "resolution": _per_model(
        "Size preset, keeping the image's aspect ratio.",
        lambda spec: f"{', '.join(spec.size.presets)} (default {spec.size.default_preset})",
    ),
    "size": _per_model("Explicit size; needs both --width and --height.", lambda spec: f"multiples of {spec.size.multiple}, {spec.size.min_side}-{spec.size.max_side}"),
    "frames": _per_model("Frames to generate.", lambda spec: f"{spec.frames.describe()}, default {spec.frames.default}"),
    "fps": _per_model("Playback frame rate.", lambda spec: _range(spec.fps)),
    "motion_fps": _per_model(
        "Motion-speed conditioning, apart from the playback rate.",
        lambda spec: f"{spec.motion_fps.min}-{spec.motion_fps.max}, default fps clamped to {spec.motion_fps.trained[0]}-{spec.motion_fps.trained[1]}" if spec.motion_fps else None,
    ),
    "steps": _per_model("Denoising steps.", lambda spec: _range(spec.steps)),
    "guidance": _per_model("Guidance scale.", lambda spec: _range(spec.guidance)),
    "scheduler": _per_model("Sampler.", lambda spec: f"{' or '.join(spec.schedulers)} (default {spec.default_scheduler})" if spec.schedulers else None),
    "cache": _per_model(
        "Step cache: reuses or extrapolates work from earlier steps; faster, frames slightly different from the "
        "uncached run (a warning says so).",
        lambda spec: f"{', '.join(spec.caches)} (default {spec.default_cache})" if spec.caches else None,
    ),
    "negative_prompt": _per_model("What to avoid.", lambda spec: "taken, with a default of its own" if spec.negative_prompt is not None else None),
}

#: The settings `generate` and `plan` share, each with every model's own rule in its help.
ResolutionOption = Annotated[str | None, typer.Option(help=HELP["resolution"])]
WidthOption = Annotated[int | None, typer.Option(help=HELP["size"])]
HeightOption = Annotated[int | None, typer.Option(help="Explicit height; needs --width.")]
FramesOption = Annotated[int | None, typer.Option(help=HELP["frames"])]
FpsOption = Annotated[int | None, typer.Option(help=HELP["fps"])]
StepsOption = Annotated[int | None, typer.Option(help=HELP["steps"])]
GuidanceOption = Annotated[float | None, typer.Option(help=HELP["guidance"])]

#: The LLM refiner's settings, shared by `generate` and `refine`; each flag overrides its I2V_LLM_* variable.
LlmOption = Annotated[str | None, typer.Option(help="LLM preset: kimi, openai, ollama or vllm. [env var: I2V_LLM_PRESET; default: kimi]")]
LlmBaseUrlOption = Annotated[str | None, typer.Option(help="Any OpenAI-compatible endpoint, instead of the preset's. [env var: I2V_LLM_BASE_URL]")]
LlmModelOption = Annotated[str | None, typer.Option(help="Model name at that endpoint. [env var: I2V_LLM_MODEL]")]
LlmTimeoutOption = Annotated[float | None, typer.Option(help="Seconds before falling back to the rules. [env var: I2V_LLM_TIMEOUT; default: 20]")]
LlmVisionOption = Annotated[
    bool | None,
    typer.Option(
        "--llm-vision/--no-llm-vision",
        help="Whether the LLM takes images: with --llm-vision the image goes with the text, so the prompt can be "
        "grounded in it. Set it for a custom --llm-model. [env var: I2V_LLM_VISION; default: the preset's vision "
        "model, or guessed from the --llm-model name]",
        show_default=False,
    ),
]


def _fail(message: str, code: int = EXIT_BAD_INPUT) -> None:
    console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _with_flags(message: str) -> str:
    """Name the flag the user typed beside the request field a message names."""
    for field, flag in FLAGS.items():
        if flag != f"--{field}":  # "--steps" after "steps:" would say nothing new
            message = message.replace(f"{field}:", f"{field} ({flag}):")
    return message


def user_errors(command: Callable) -> Callable:
    """Turn the errors a user can fix into one line and exit code 2."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except ValidationError as error:
            _fail(_with_flags(describe_validation_error(error)))
        except GenerationCancelled as error:
            _fail(str(error), EXIT_CANCELLED)
        except I2VError as error:
            _fail(_with_flags(str(error)))
        except KeyboardInterrupt:
            _fail("aborted; nothing was written", EXIT_CANCELLED)

    return wrapper


@app.command(cls=Command)
@user_errors
def generate(
    ctx: typer.Context,
    image: Annotated[Path, typer.Argument(help="Still image to animate (PNG, JPEG, WebP, BMP).")],
    prompt: Annotated[str, typer.Argument(help="The motion you want, e.g. 'a cat turning its head'.")],
    negative_prompt: Annotated[str | None, typer.Option(help=HELP["negative_prompt"])] = None,
    resolution: ResolutionOption = None,
    width: WidthOption = None,
    height: HeightOption = None,
    frames: FramesOption = None,
    fps: FpsOption = None,
    motion_fps: Annotated[int | None, typer.Option(help=HELP["motion_fps"])] = None,
    steps: StepsOption = None,
    guidance: GuidanceOption = None,
    seed: Annotated[int | None, typer.Option(help="Seed; random when absent, always recorded.")] = None,
    model: Annotated[str | None, typer.Option(help="Model name (see `i2v models list`), hub id or local folder. [default: $I2V_MODEL, else the registry's default]")] = None,
    scheduler: Annotated[str | None, typer.Option(help=HELP["scheduler"])] = None,
    cache: Annotated[str | None, typer.Option(help=HELP["cache"])] = None,
    fmt: Annotated[str | None, typer.Option("--format", help="mp4, webm or gif. [default: the -o suffix, else mp4]")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Video path; metadata goes beside it as .json.")] = None,
    crf: Annotated[int, typer.Option(help="Quality for mp4/webm: lower is better and larger.", min=0, max=51)] = 18,
    device: Annotated[str | None, typer.Option(help="cpu, cuda, cuda:N or mps; checked before the model loads. [default: best available]")] = None,
    dtype: Annotated[str | None, typer.Option(help="fp32, bf16 or fp16. [default: per device]")] = None,
    refiner: Annotated[str, typer.Option(help="rules (offline), llm, or none.")] = "rules",
    no_refine: Annotated[bool, typer.Option("--no-refine", help="Use the prompt exactly as typed.")] = False,
    llm: LlmOption = None,
    llm_base_url: LlmBaseUrlOption = None,
    llm_model: LlmModelOption = None,
    llm_timeout: LlmTimeoutOption = None,
    llm_vision: LlmVisionOption = None,
    allow_degrade: Annotated[bool, typer.Option(help="Let the advisor lower frames/size you set if nothing else fits.")] = False,
    tier: Annotated[str | None, typer.Option("--preset", help="fast, standard or quality: the advisor's settings for this image, prompt and device (see `i2v assess`); options you give win.")] = None,
) -> None:
    """Generate a video from IMAGE and PROMPT. Settings left out take the model's defaults."""
    from i2v.generation import generate as run
    from i2v.media.video import format_for
    from i2v.models.base import Hooks
    from i2v.models.registry import spec_for

    request = _request_from_options(
        ctx, image=image, prompt=prompt, negative_prompt=negative_prompt, resolution=resolution, width=width,
        height=height, frames=frames, fps=fps, motion_fps=motion_fps, steps=steps, guidance=guidance, seed=seed,
        model=model, scheduler=scheduler, cache=cache, refiner="none" if no_refine else refiner,
        allow_degrade=allow_degrade,
    )
    _check_device(device, dtype, request.model)
    from i2v.refine import make_refiner

    loaded = known = None
    if tier is not None:  # a quality tier of the model's spec (`spec.tiers`), which the flag calls a preset
        from i2v.media.images import load_image

        # Read once: the advisor's recommendation and the run share the decoded image and the rules' reading of
        # the prompt (the rules refiner reads only the text, so the run's refinement is the same one).
        loaded = load_image(image)
        if request.refiner != "none":
            known = make_refiner("rules", spec=spec_for(request.model)).refine(request.prompt)
        request, reasons = tier_request(request, tier, loaded.image, tags=known.tags if known else [])
        for reason in reasons:
            console.print(f"preset {tier}: {reason}", highlight=False, soft_wrap=True)
    spec = spec_for(request.model, download=True)  # a hub id the registry does not know is fetched, as before
    spec.check(request)  # refused in one line before the progress bar starts; generate() resolves the plan
    video_format = format_for(output or Path(f"{image.stem}.{fmt or 'mp4'}"), fmt)

    cancel = threading.Event()
    previous = signal.getsignal(signal.SIGINT)

    def on_interrupt(signum: int, frame: Any) -> None:
        cancel.set()
        signal.signal(signal.SIGINT, previous)
        console.print("[yellow]cancelling after this step… (Ctrl-C again to abort now)[/]")

    signal.signal(signal.SIGINT, on_interrupt)
    progress = Progress(
        TextColumn("{task.description:<10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )
    task = progress.add_task("loading", total=None, rate="")

    interactive = console.is_terminal

    def on_stage(stage: str) -> None:
        label = STAGE_LABELS.get(stage, stage)
        if not interactive:  # piped to a log: plain lines instead of a live bar
            console.print(f"{label}…", highlight=False)
        elif not progress.live.is_started:  # start only once the image is known good: errors stay one line
            progress.start()
        progress.update(task, description=label)

    def on_step(step: int, total: int, elapsed: float) -> None:
        rate = step / elapsed if elapsed > 0 else 0.0
        shown = f"{rate:.2f} it/s" if rate >= 1 else f"{1 / rate:.1f} s/it" if rate else ""
        progress.update(task, completed=step, total=total, rate=shown)
        if not interactive and (step == total or step % max(1, total // 10) == 0):
            console.print(f"step {step}/{total} ({shown})", highlight=False)

    settings = _llm_settings(llm, llm_base_url, llm_model, llm_timeout, llm_vision) if request.refiner == "llm" else None
    refining = _Known(known) if known is not None and request.refiner == "rules" else make_refiner(request.refiner, settings, spec=spec)
    try:
        result = run(
            request, Hooks(on_step=on_step, on_stage=on_stage, cancelled=cancel.is_set), device=device, dtype=dtype,
            refiner=_SaysDropped(refining), llm=settings, image=loaded,
        )
        if cancel.is_set():  # Ctrl-C after the last step: honour it, write nothing
            done = int(progress.tasks[0].completed)
            raise GenerationCancelled(done, done)
        on_stage("write")
        path = result.save(output or Path(f"{image.stem}-{result.seed}.{video_format}"), fmt=video_format, crf=crf)
    finally:
        progress.stop()
        signal.signal(signal.SIGINT, previous)
    refined = result.metadata["refined_prompt"]
    if refined["source"] != "user":
        console.print(f"prompt ({refined['source']}): {refined['prompt']}", highlight=False)
    for warning in result.warnings:
        if warning != not_understood(refined["dropped"]):  # said before denoising began
            console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    timings = result.metadata["timings"]
    console.print(
        f"wrote {path} ({result.frames.shape[0]} frames, {result.frames.shape[2]}×{result.frames.shape[1]}, "
        f"{result.fps} fps, seed {result.seed}) in {sum(timings.values()):.1f} s; metadata {path.with_suffix('.json')}",
        highlight=False,
    )


def _check_device(device: str | None, dtype: str | None, model: str) -> None:
    """Refuse a device this machine lacks (naming the ones it has) or an unknown dtype before a model loads or
    downloads; a built-in model-free backend ignores both."""
    from i2v.models.registry import built_in

    if model in built_in():
        return
    if dtype is not None and dtype not in ("fp32", "bf16", "fp16"):
        _fail(f"--dtype must be fp32, bf16 or fp16, got {dtype!r}")
    if device is not None:
        from i2v.models.loading import pick_device

        pick_device(device)


#: CLI parameter -> GenerationRequest field, where the names differ.
OPTION_FIELDS = {"frames": "num_frames", "guidance": "guidance_scale"}


def _request_from_options(ctx: typer.Context, *, image: Path, prompt: str, **options: Any) -> GenerationRequest:
    """A request holding only the settings the user typed (plus the model), so the advisor knows which ones it
    may change and which the user fixed."""
    fields: dict[str, Any] = {"image": image, "prompt": prompt, "model": options.pop("model", None) or default_model()}
    for name, value in options.items():
        source = ctx.get_parameter_source(name)
        # By name: typer may ship its own copy of click, whose ParameterSource is a different class.
        given = source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP") and value is not None
        if name == "refiner" or given:
            fields[OPTION_FIELDS.get(name, name)] = value
    return GenerationRequest(**fields)


@app.command(cls=Command)
@user_errors
def plan(
    ctx: typer.Context,
    image: Annotated[Path, typer.Argument(help="The image you will animate (its aspect ratio decides the size).")],
    resolution: ResolutionOption = None,
    width: WidthOption = None,
    height: HeightOption = None,
    frames: FramesOption = None,
    fps: FpsOption = None,
    steps: StepsOption = None,
    guidance: GuidanceOption = None,
    cache: Annotated[str | None, typer.Option(help=HELP["cache"] + " Its state is planned for too.")] = None,
    model: Annotated[str | None, typer.Option(help="Model to plan for (see `i2v models list`).")] = None,
    vram: Annotated[str | None, typer.Option(help="Plan for a card with this much memory, e.g. 24GiB. [env var: I2V_VRAM]")] = None,
    device: Annotated[str | None, typer.Option(help="Device to probe: cpu, cuda, cuda:N or mps. [default: best available]")] = None,
    dtype: Annotated[str | None, typer.Option(help="fp16, bf16 or fp32. [default: per device]")] = None,
    margin: Annotated[float, typer.Option(help="Share of free memory kept in reserve.", min=0.0, max=0.9)] = 0.10,
    allow_degrade: Annotated[bool, typer.Option(help="Allow lowering the frames/size you set.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
) -> None:
    """Predict peak GPU memory and time for a request, and the settings that make it fit."""
    from i2v.advisor.device import parse_size
    from i2v.advisor.report import plan_report, render_plan_table
    from i2v.media.images import load_image

    request = _request_from_options(
        ctx, image=image, prompt="plan", resolution=resolution, width=width, height=height, frames=frames, fps=fps,
        steps=steps, guidance=guidance, model=model, cache=cache, allow_degrade=allow_degrade, refiner="none",
    )
    if vram is not None:
        try:
            parse_size(vram)
        except (ValueError, I2VError) as error:
            _fail(f"--vram: {error}")
    if dtype is not None and dtype not in ("fp16", "bf16", "fp32"):
        _fail(f"--dtype must be fp16, bf16 or fp32, got {dtype!r}")
    if vram is None and not os.environ.get("I2V_VRAM"):  # else a card not in this machine is planned for
        _check_device(device, None, request.model)  # a missing GPU was probed as the CPU, silently
    loaded = load_image(image)
    report = plan_report(
        request, loaded.image.size, vram, allow_degrade, margin, device=device, dtype=dtype, image=loaded.image  # type: ignore[arg-type]
    )
    report["warnings"] = [*loaded.warnings, *report["warnings"]]
    from i2v.advisor.device import probe_device
    from i2v.advisor.recommend import advise

    recommendation = advise(loaded.image, model=request.model, device=probe_device(device, vram))
    report["recommendation"] = recommendation.model_dump(mode="json", include={"preset", "preset_reason", "settings", "width", "height"})
    if as_json:
        typer.echo(json.dumps(report, indent=2, ensure_ascii=False))
        return
    Console().print(render_plan_table(report))
    Console().print(render_recommendation(recommendation))


@app.command(cls=Command)
@user_errors
def refine(
    text: Annotated[str, typer.Argument(help="What should move, in any language, e.g. 猫转头.")],
    image: Annotated[Path | None, typer.Option(help="The image, so an LLM can ground the prompt in it.")] = None,
    refiner: Annotated[str, typer.Option(help="rules (offline) or llm.")] = "rules",
    llm: LlmOption = None,
    llm_base_url: LlmBaseUrlOption = None,
    llm_model: LlmModelOption = None,
    llm_timeout: LlmTimeoutOption = None,
    llm_vision: LlmVisionOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the RefinedPrompt as JSON.")] = False,
) -> None:
    """Turn TEXT (+ the image) into the English prompt and motion tags the video model understands."""
    from i2v.media.images import load_image
    from i2v.refine import make_refiner

    if not text.strip():
        _fail("text is empty: describe the motion you want, e.g. 猫转头 or 'waves rolling in'")
    if refiner not in ("rules", "llm"):
        _fail(f"refiner must be rules or llm, got {refiner!r}")
    picture = load_image(image).image if image is not None else None
    settings = _llm_settings(llm, llm_base_url, llm_model, llm_timeout, llm_vision) if refiner == "llm" else None
    result = make_refiner(refiner, settings).refine(text, picture)  # type: ignore[arg-type]
    if as_json:
        typer.echo(result.model_dump_json(indent=2))
        _say_dropped(result)
        return
    out = Console()
    out.print(result.prompt, highlight=False)
    out.print(f"tags: {', '.join(result.tags) or '-'}   source: {result.source}", highlight=False)
    if result.settings_hint:
        out.print(f"suggested: {result.settings_hint.model_dump(exclude_none=True)}", highlight=False)
    for note in result.notes:
        if note != not_understood(result.dropped):  # said last, where the user looks
            console.print(f"[yellow]note:[/] {note}", highlight=False)
    _say_dropped(result)


def _say_dropped(result: Any) -> None:
    """Name the words the prompt leaves out (stderr), so the user can edit the prompt before a long run."""
    if result.dropped:
        console.print(not_understood(result.dropped), style="bold yellow", markup=False, highlight=False, soft_wrap=True)


class _Known:
    """The rules refiner's answer for a prompt it has already refined (`generate --preset` read its tags)."""

    name = "rules"

    def __init__(self, refined: Any) -> None:
        self.refined = refined

    def refine(self, text: str, image: Any = None) -> Any:
        return self.refined


class _SaysDropped:
    """A refiner that names the words it could not render as soon as it has refined, before the denoising."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.name = inner, inner.name

    def refine(self, text: str, image: Any = None) -> Any:
        result = self.inner.refine(text, image)
        _say_dropped(result)
        return result


def _llm_settings(provider: str | None, base_url: str | None, model: str | None, timeout: float | None, vision: bool | None):
    """Environment (`I2V_LLM_*`) first, flags on top; says which endpoint, model and key it will use. `provider` is
    the LLM provider preset (`--llm`, `I2V_LLM_PRESET`), not a quality tier."""
    from i2v.refine.llm import LLMSettings

    overrides = {"preset": provider, "base_url": base_url, "model": model, "timeout": timeout, "vision": vision}
    try:
        settings = LLMSettings(**{key: value for key, value in overrides.items() if value is not None})
    except ValidationError as error:
        _fail("llm settings: " + describe_validation_error(error))
    console.print(describe_llm(settings), highlight=False, markup=False, soft_wrap=True)
    return settings


def describe_llm(settings: Any) -> str:
    """One line naming the endpoint, model and key variable an LLM refine uses, so a default is never silent."""
    (_, vision_model, text_model), base_url = settings.resolved(), settings.endpoint()  # no credentials shown
    unset = not settings.model_fields_set & {"preset", "base_url"}
    where = f"nothing configured, so the {settings.preset} preset: {base_url}" if unset else (
        base_url if settings.base_url else f"{base_url} ({settings.preset} preset)")
    images = ("text only; --llm-vision if it takes images" if vision_model is None else
              "takes images" if vision_model == text_model else f"images go to {vision_model}")
    variable = settings.key_variable()
    key = ("no key (I2V_LLM_API_KEY is not set; a provider's own key goes only to its preset's endpoint)"
           if variable is None and settings.custom_endpoint() else "no key") if variable is None else f"key from {variable} ({'set' if os.environ.get(variable) or settings.api_key else 'not set'})"
    hint = "; choose with --llm or --llm-base-url" if unset else ""
    return f"llm: {where}, model {text_model} ({images}), {key}{hint}"


@app.command(cls=Command)
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind; anything but loopback needs a token.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port for the UI and the API.")] = 7860,
    share_token: Annotated[str | None, typer.Option(help="Token required on the API and UI. [env var: I2V_API_TOKEN]")] = None,
    local_worker: Annotated[bool, typer.Option(help="Run jobs in this process (off: API/UI node only).")] = True,
    queue: Annotated[str | None, typer.Option(help="redis://HOST:PORT/DB: run jobs on `i2v worker` processes. [env var: I2V_QUEUE_URL]")] = None,
    queue_file: Annotated[Path | None, typer.Option(help="A file holding the Redis URL, so its password stays out of `ps`. [env var: I2V_QUEUE_URL_FILE]")] = None,
) -> None:
    """Run the web UI (/) and REST API (/api/v1, docs at /docs) with the job queue in one process."""
    from i2v.web.serve import ServeError
    from i2v.web.serve import serve as run_server

    try:
        run_server(host, port, token=share_token, local_worker=local_worker, queue=queue, queue_file=queue_file)
    except ServeError as error:
        console.print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None


@app.command(cls=Command)
def worker(
    queue: Annotated[str | None, typer.Option(help="redis://HOST:PORT/DB to take jobs from. [env var: I2V_QUEUE_URL]")] = None,
    gpu: Annotated[int | None, typer.Option(help="GPU number to pin (sets CUDA_VISIBLE_DEVICES before torch starts).")] = None,
    device: Annotated[str | None, typer.Option(help="cpu, cuda:N or mps, instead of --gpu.")] = None,
    model: Annotated[str | None, typer.Option(help="Model this worker holds. [default: $I2V_MODEL, else the registry's default]")] = None,
    name: Annotated[str | None, typer.Option(help="Name shown in /api/v1/workers. [default: HOST:PID]")] = None,
    queue_file: Annotated[Path | None, typer.Option(help="A file holding the Redis URL, so its password stays out of `ps`. [env var: I2V_QUEUE_URL_FILE]")] = None,
) -> None:
    """Take jobs from the Redis queue: one process per GPU, model loaded once, one job at a time."""
    from i2v.jobs.worker_cli import worker_main

    worker_main(queue, gpu, device, model, name, queue_file=queue_file)


@app.command("make-tiny-model", cls=Command)
@user_errors
def make_tiny_model(
    folder: Annotated[Path, typer.Argument(help="Where to write the pipeline (created).")],
    seed: Annotated[int, typer.Option(help="Seed for the random weights.")] = 0,
    model: Annotated[str | None, typer.Option(help="Model whose layout to copy (see `i2v models list`). [default: $I2V_MODEL, else the registry's default]")] = None,
) -> None:
    """Write a tiny random-weight pipeline in a model's hub layout, for smoke runs without a download."""
    from i2v.models.registry import plugin_for

    name = model or default_model()
    builder = plugin_for(name).tiny_builder()
    if builder is None:
        _fail(f"{name} has no weights to make a tiny copy of; it runs as it is")
    path = builder(folder, seed=seed)
    spec = plugin_for(name).spec
    frames = spec.frames.nearest(8)[0]
    # One line, never wrapped at the terminal's width: the command is meant to be copied.
    console.print(f"wrote a tiny random-weight pipeline to {path}; try: i2v generate examples/cat.jpg 'a cat' --model {path} "
                  f"--width 64 --height 64 --frames {frames} --steps 3", highlight=False, markup=False, soft_wrap=True)


@models_app.command("list", cls=Command)
@user_errors
def models_list(as_json: Annotated[bool, typer.Option("--json", help="Print [{name, description, downloaded, spec}] as JSON.")] = False) -> None:
    """Known models, which are downloaded, and what each can be asked (frames, sizes, steps…)."""
    from huggingface_hub import constants

    from i2v.models.registry import downloaded as on_disk
    from i2v.models.registry import known_models

    current = default_model()
    rows = []
    for name, (known, plugin) in known_models().items():
        downloaded = on_disk(name)
        rows.append({
            "name": name, "default": name == current, "backend": plugin.name, "description": known.summary,
            "download_size": known.download_size, "built_in": plugin.built_in, "downloaded": downloaded,
            "spec": plugin.spec.model_dump(mode="json"),
        })
    if as_json:
        typer.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    table = Table("model", "downloaded", "frames", "sizes", "steps", "about")
    for row in rows:
        spec = known_models()[row["name"]][1].spec
        downloaded = "built in" if row["built_in"] else "yes" if row["downloaded"] else f"no ({row['download_size']})"
        table.add_row(
            row["name"] + (" (default)" if row["default"] else ""), downloaded,
            f"{spec.frames.describe()} ({spec.frames.default})", ", ".join(spec.size.presets),
            _range(spec.steps) or "-", row["description"],
        )
    if current not in known_models():
        table.add_row(current + " (default, from I2V_MODEL)", "-", "", "", "", "its model_index.json decides the backend")
    Console().print(table)
    console.print(f"cache: {constants.HF_HUB_CACHE} (set HF_HOME to move it)", highlight=False)


@models_app.command("pull", cls=Command)
@user_errors
def models_pull(model: Annotated[str | None, typer.Argument(help="Hub id (see `i2v models list`). [default: $I2V_MODEL, else the registry's default]")] = None) -> None:
    """Download a model's weights into the Hugging Face cache."""
    from i2v.models.registry import built_in, resolve

    name = model or default_model()
    if name in built_in():
        _fail(f"{name} is built in: there is nothing to download")
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:  # else the refusal would say "get it with `i2v models pull`"
        _fail(f"HF_HUB_OFFLINE is set, which forbids downloads: unset it to pull {name}")
    source = resolve(name, download=True)
    console.print(f"{source.model_id} is ready at {source.folder}", highlight=False)


register_advice(app, user_errors, cls=Command)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        console.print("aborted")
        sys.exit(EXIT_CANCELLED)
