"""`i2v assess` and `i2v troubleshoot`: the strategy advisor on the command line, registered into the main app
by `register`. User mistakes raise i2v errors, which the main app's wrapper turns into one line and exit 2."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from PIL import Image
from rich.console import Console
from rich.table import Table

from i2v.errors import I2VError, InvalidInputError
from i2v.models.registry import spec_for
from i2v.refine import make_refiner
from i2v.request import MAX_PROMPT_CHARS, GenerationRequest, default_model

console = Console(stderr=True)
#: The prompt in the printed command when none was given: plainly something to replace.
PROMPT_PLACEHOLDER = "'<WHAT SHOULD MOVE, AND HOW>'"
#: Request field -> the `generate` flag that sets it: messages name what the user typed, and the advisor prints
#: `i2v generate` commands with it.
FLAGS = {
    "model": "--model", "negative_prompt": "--negative-prompt", "resolution": "--resolution", "width": "--width",
    "height": "--height", "num_frames": "--frames", "fps": "--fps", "motion_fps": "--motion-fps", "steps": "--steps",
    "guidance_scale": "--guidance", "scheduler": "--scheduler", "cache": "--cache", "seed": "--seed",
}


def assess_command(
    image: Annotated[Path, typer.Argument(help="The image you will animate.")],
    text: Annotated[str | None, typer.Argument(help="The motion you want, in any language (its tempo tags shape the settings).")] = None,
    model: Annotated[str | None, typer.Option(help="Model to judge for (see `i2v models list`). [default: $I2V_MODEL, else the registry's default]")] = None,
    refiner: Annotated[str, typer.Option(help="rules (offline) or llm: llm also asks the configured vision LLM to judge the image.")] = "rules",
    vram: Annotated[str | None, typer.Option(help="Recommend for a card with this much memory, e.g. 24GiB. [env var: I2V_VRAM]")] = None,
    device: Annotated[str | None, typer.Option(help="Device to plan for. [default: best available]")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print {assessment, refined, recommendation} as JSON.")] = False,
) -> None:
    """Judge IMAGE for a model and recommend a preset and settings, each with its reason."""
    # Here and below: the advisor (numpy, the device probe) and the image decoder load only for the advice
    # commands, so `i2v models list` and the other commands start without them.
    from i2v.advisor.assess import assess
    from i2v.advisor.device import probe_device
    from i2v.advisor.recommend import advise
    from i2v.media.images import load_image

    if refiner not in ("rules", "llm"):
        raise InvalidInputError(f"--refiner must be rules or llm, got {refiner!r}")
    if text is not None and len(text) > MAX_PROMPT_CHARS:  # generate's limit: else "run it" would print a refused command
        raise InvalidInputError(f"TEXT is {len(text)} characters; the limit is {MAX_PROMPT_CHARS}, as for i2v generate")
    name = model or default_model()
    spec = spec_for(name)
    loaded = load_image(image)
    llm = cache = None
    if refiner == "llm":
        from i2v.refine.cache import RefinementCache  # here and below: only with an LLM (openai, its answer cache)
        from i2v.refine.llm import LLMSettings

        llm, cache = LLMSettings(), RefinementCache.default()
    assessment = assess(loaded.image, spec=spec, llm=llm, cache=cache)
    refined = make_refiner(refiner, llm, spec=spec).refine(text, loaded.image) if text and text.strip() else None  # type: ignore[arg-type]
    recommendation = advise(
        loaded.image, refined.tags if refined else None, model=name, assessment=assessment, device=probe_device(device, vram)
    )
    if as_json:
        typer.echo(json.dumps({
            "assessment": assessment.model_dump(mode="json"),
            "refined": refined.model_dump(mode="json") if refined else None,
            "recommendation": recommendation.model_dump(mode="json"),
        }, indent=2, ensure_ascii=False))
        return
    out = Console()
    out.print(render_assessment(assessment))
    out.print(render_recommendation(recommendation))
    if refined is not None:
        out.print(f"prompt ({refined.source}): {refined.prompt}   tags: {', '.join(refined.tags) or '-'}", highlight=False)
    for note in assessment.notes:
        console.print(f"[yellow]note:[/] {note}", highlight=False)
    import shlex

    prompt = shlex.quote(text) if text and text.strip() else PROMPT_PLACEHOLDER
    model_flag = f" --model {shlex.quote(name)}" if model else ""
    out.print(f"run it: i2v generate {shlex.quote(str(image))} {prompt}{model_flag} --preset {recommendation.preset}",
              highlight=False, soft_wrap=True)


def render_assessment(assessment: Any) -> Table:
    figures = assessment.measurements
    table = Table(title=f"Image assessment for {assessment.model} ({assessment.source})", show_header=False)
    table.add_column("", style="bold")
    table.add_column("")
    table.add_row("size", f"{figures.width}×{figures.height} → {figures.target_width}×{figures.target_height} at the default size"
                  f" ({figures.upscale:.1f}× the pixels)")
    table.add_row("aspect", f"{figures.aspect:.2f}" + (f", {figures.crop_share:.0%} cropped" if figures.crop_share else ""))
    table.add_row("sharpness / contrast", f"{figures.sharpness:.0f} / {figures.contrast:.0f} of 255")
    table.add_row("JPEG blocks / colour", f"{figures.blockiness:.2f}× / {figures.colourfulness:.0f}")
    if assessment.judgement is not None:
        judged = assessment.judgement
        table.add_row("seen", f"{judged.subject} ({judged.style}; {judged.people} people, {judged.animals} animals"
                      f"{', text' if judged.text_present else ''})")
        table.add_row("why", judged.reason)
    table.add_row("suitability", f"{assessment.suitability}/5" + ("" if assessment.judgement else " (offline estimate)"))
    if assessment.warnings:
        table.add_row("warnings", "\n".join(f"• {warning.message}" for warning in assessment.warnings))
    return table


def render_recommendation(recommendation: Any) -> Table:
    table = Table(title=f"Recommended: {recommendation.preset}", show_header=False)
    table.add_column("", style="bold")
    table.add_column("")
    table.add_row("preset", recommendation.preset_reason)
    for setting in recommendation.settings:
        table.add_row(setting.field, f"{setting.value}: {setting.reason}")
    return table


def troubleshoot_command(
    job_or_json: Annotated[str, typer.Argument(help="A clip's metadata file (the .json beside the video), or a job id with --server.")],
    symptom: Annotated[str, typer.Option(help="What went wrong, e.g. flicker or stiff (a name it does not know lists them all).")],
    seed: Annotated[str | None, typer.Option(help="same or new. [default: the symptom's choice]")] = None,
    server: Annotated[str | None, typer.Option(help="Server URL for a job id, e.g. http://127.0.0.1:7860 (token from $I2V_API_TOKEN).")] = None,
    queue: Annotated[bool, typer.Option(help="With --server: queue the proposed run at once.")] = False,
    llm: Annotated[bool, typer.Option("--llm", help="Let the configured LLM (I2V_LLM_*; the server's with --server) rewrite the prompt for the symptom.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the proposal as JSON.")] = False,
) -> None:
    """Propose the next run for a disappointing clip: the changed settings and prompt, each with its reason."""
    from i2v.advisor.troubleshoot import SYMPTOMS, propose

    if symptom not in SYMPTOMS:
        choices = "; ".join(f"{name} ({row.label})" for name, row in SYMPTOMS.items())
        raise InvalidInputError(f"--symptom must be one of: {choices}; got {symptom!r}")
    if seed not in (None, "same", "new"):
        raise InvalidInputError(f"--seed must be same or new, got {seed!r}")
    path = Path(job_or_json).expanduser()
    if server is not None:
        answer = _ask_server(server, job_or_json, {"symptom": symptom, "seed": seed, "queue": queue, "llm": llm})
        proposal, queued = answer["proposal"], answer.get("job")
        image = None
    elif path.is_file():
        metadata = _read_metadata(path)
        size = (metadata.get("image") or {}).get("size")
        settings = None
        if llm:
            from i2v.refine.llm import LLMSettings

            settings = LLMSettings()
        result = propose(metadata, symptom, seed=seed, from_clip=path.name, llm=settings,  # type: ignore[arg-type]
                         image_size=tuple(size) if isinstance(size, list) and len(size) == 2 else None)
        proposal, queued = result.model_dump(mode="json"), None
        image = metadata["request"].get("image")
        if queue:
            raise InvalidInputError("--queue needs --server (a clip file is run with the printed i2v generate command)")
    else:
        raise InvalidInputError(f"{job_or_json} is not a file; for a job id, give the server with --server URL")
    if as_json:
        typer.echo(json.dumps({"proposal": proposal, "job": queued}, indent=2, ensure_ascii=False))
        return
    out = Console()
    table = Table(title=f"Next run for: {proposal['label']} (seed: {proposal['seed']})", show_header=False)
    table.add_column("", style="bold")
    table.add_column("")
    for change in proposal["changes"]:
        table.add_row(change["field"], f"{change['before']} → {change['after']}\n{change['reason']}")
    out.print(table)
    for note in proposal["notes"]:
        console.print(f"[yellow]note:[/] {note}", highlight=False)
    if queued:
        out.print(f"queued job {queued['id']}", highlight=False)
    elif image:
        out.print("run it: " + generate_command(image, proposal["request"]), highlight=False, soft_wrap=True)


def generate_command(image: str, fields: dict[str, Any]) -> str:
    """The `i2v generate` line for a proposed request (the advice chain is recorded only through the API)."""
    import shlex

    parts = ["i2v", "generate", shlex.quote(str(image)), shlex.quote(fields["prompt"])]
    for field, flag in FLAGS.items():
        if fields.get(field) is not None:
            parts += [flag, shlex.quote(str(fields[field]))]
    if fields.get("allow_degrade"):
        parts.append("--allow-degrade")
    if fields.get("refiner") == "none":
        parts.append("--no-refine")
    return " ".join(parts)


def _read_metadata(path: Path) -> dict[str, Any]:
    try:
        metadata = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InvalidInputError(f"{path} is not a clip's metadata JSON ({error.__class__.__name__})") from None
    if not isinstance(metadata, dict) or not isinstance(metadata.get("request"), dict):
        raise InvalidInputError(f"{path} has no 'request': give the .json written beside the video")
    return metadata


def _ask_server(server: str, job_id: str, body: dict[str, Any]) -> dict[str, Any]:
    import httpx

    token = os.environ.get("I2V_API_TOKEN")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        answer = httpx.post(f"{server.rstrip('/')}/api/v1/jobs/{job_id}/troubleshoot", json=body, headers=headers, timeout=60)
    except httpx.HTTPError as error:
        raise ServerError(f"cannot reach {server}: {error.__class__.__name__}") from None
    if answer.status_code != 200:
        try:
            detail = answer.json().get("detail", answer.text)
        except ValueError:
            detail = answer.text[:200]
        raise ServerError(f"the server answered {answer.status_code}: {detail}")
    return answer.json()


class ServerError(I2VError):
    """The server refused or could not be reached."""

    code = "server_error"


def tier_request(
    request: GenerationRequest, preset: str, image: Path | Image.Image, tags: list[str] | None = None
) -> tuple[GenerationRequest, list[str]]:
    """`generate --preset`: the advisor's settings at that tier for this image and device, filling only what the
    user left out (options they typed win). Returns the request and one line per setting, saying why. A caller
    that has the image decoded and the prompt's tags already passes them, so neither is done twice."""
    from i2v.advisor.device import probe_device
    from i2v.advisor.recommend import TIERS, advise
    from i2v.media.images import load_image

    if preset not in TIERS:
        raise InvalidInputError(f"--preset must be one of {', '.join(TIERS)}, got {preset!r}")
    picture = image if isinstance(image, Image.Image) else load_image(image).image
    if tags is None:
        spec = spec_for(request.model)
        tags = make_refiner("rules", spec=spec).refine(request.prompt).tags if request.refiner != "none" else []
    recommendation = advise(picture, tags, model=request.model, device=probe_device(), preset=preset)  # type: ignore[arg-type]
    applied = recommendation.apply(request)
    taken = set(applied.advice.recommendation.fields) if applied.advice and applied.advice.recommendation else set()
    lines = [f"{setting.field}={setting.value}: {setting.reason}" for setting in recommendation.settings if setting.field in taken]
    return applied, lines


def register(app: typer.Typer, user_errors: Callable[[Callable], Callable], **command_options: Any) -> None:
    """Add `assess` and `troubleshoot` to the main app, with its handling of user errors and its command class."""
    app.command("assess", **command_options)(user_errors(assess_command))
    app.command("troubleshoot", **command_options)(user_errors(troubleshoot_command))
