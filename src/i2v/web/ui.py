"""The Gradio page: inputs on the left (image, motion text, refine preview, model and the essential settings, the
rest folded), the run on the right (a progress bar, the live preview while denoising, the video and a result card
with a download button, the JSON folded), and a history of thumbnails that restores a clip's form. English and
Chinese from one table (`ui_text`), picked from the browser's language (and switchable in Gradio's settings)."""

from __future__ import annotations

import json
import os
import re
import secrets
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import gradio as gr
from fastapi import FastAPI
from PIL import Image

from i2v.errors import I2VError
from i2v.jobs.service import JobService
from i2v.models.registry import built_in, spec_for
from i2v.models.spec import ModelSpec
from i2v.refine.base import RefinedPrompt
from i2v.request import MAX_PROMPT_CHARS, GenerationRequest, default_model
from i2v.web import ui_text
from i2v.web.security import GradioGuard
from i2v.web.ui_text import STRINGS, idle_html, lang_of, progress_html, tr
from i2v.web.views import JobView, job_view

POLL_SECONDS = 0.3
HISTORY_LIMIT = 48
I18N = gr.I18n(en=STRINGS["en"], zh=STRINGS["zh"], **{"zh-CN": STRINGS["zh"], "zh-TW": STRINGS["zh"]})
#: Run before an event's Python function: the first input becomes the language the page shows now (Gradio's
#: i18n sets <html lang> from the browser, or from its settings menu), so server-written text matches the labels.
WITH_LANG = "(...args) => [document.documentElement.lang || navigator.language || 'en', ...args.slice(1)]"
#: Generate (and the camera preview) wait while an image is still uploading: disabled from the moment a file is
#: picked or dropped until the picture shows (or 60 s pass), and put back as they were.
HEAD = """<script>
(() => {
  const buttons = () => ['generate', 'preview_camera'].map(id => document.getElementById(id)).filter(Boolean);
  function hold() {
    const image = document.getElementById('image');
    if (!image) return;
    const held = buttons().filter(b => !b.disabled);
    held.forEach(b => { b.disabled = true; b.dataset.uploading = '1'; });
    const started = Date.now();
    const release = () => {
      const done = image.querySelector('img') && !image.querySelector('.uploading, progress');
      if (!done && Date.now() - started < 60000) { setTimeout(release, 150); return; }
      held.forEach(b => { if (b.dataset.uploading) { b.disabled = false; delete b.dataset.uploading; } });
    };
    setTimeout(release, 150);
  }
  document.addEventListener('change', e => { if (e.target.closest && e.target.closest('#image') && e.target.type === 'file') hold(); }, true);
  document.addEventListener('drop', e => { if (e.target.closest && e.target.closest('#image')) hold(); }, true);
})();
</script>"""
#: The toast headings in the page's language: in <head>, since Gradio prefixes css= rules with its container's
#: class (html[lang] … never matched there) and toasts are drawn outside that container.
HEAD += "<style>\n" + ui_text.toast_css() + "\n</style>"
CSS = """
.i2v-progress { padding: 6px 0; }
.i2v-bar { height: 14px; border-radius: 7px; background: var(--neutral-200, #e5e7eb); overflow: hidden; }
.i2v-fill { height: 100%; background: var(--color-accent, #f97316); transition: width .3s; }
.i2v-done .i2v-fill { background: #16a34a; } .i2v-failed .i2v-fill { background: #dc2626; }
.i2v-line { margin-top: 4px; font-size: 0.95em; }
.i2v-error { color: #b91c1c; margin-top: 4px; }
.i2v-card table { width: 100%; border-collapse: collapse; } .i2v-card th { text-align: left; width: 7em; vertical-align: top; }
.i2v-card th, .i2v-card td { padding: 3px 6px; border-bottom: 1px solid var(--border-color-primary, #e5e7eb); }
#history .caption-label { white-space: normal; font-size: 0.75em; line-height: 1.25; }
"""


def refine_words_markdown(refined: RefinedPrompt, lang: str = "en") -> str:
    """Beside the refined prompt: which words the dictionary translated and which the prompt leaves out, so the
    user can check them and edit the prompt."""

    def words(items: Iterable[str]) -> str:
        return ", ".join(re.sub(r"([\\`*_{}\[\]()#+\-.!|<>~])", r"\\\1", item) for item in items)

    lines = []
    if refined.from_dictionary:
        translated = words(f"{word} = {english}" for word, english in refined.from_dictionary.items())
        lines.append(f"**{tr(lang, 'words.dictionary')}** <span class=\"i2v-content\">{translated}</span>")
    if refined.dropped:
        lines.append(f"**{tr(lang, 'words.dropped')}** {words(refined.dropped)} — {tr(lang, 'words.edit')}")
    return "  \n".join(lines)


def spec_of(model: str | None) -> ModelSpec | None:
    """The spec of a model the page offers; None for one only a remote worker has on disk."""
    try:
        return spec_for(model or default_model())
    except I2VError:
        return None


def spec_fields(spec: ModelSpec | None, negative: str | None, resolution: str | None, frames: Any, fps: Any,
                steps: Any, guidance: Any, scheduler: str | None, cache: str | None = None) -> dict[str, Any]:
    """The form's settings as request fields: only what the model takes, and only where the form differs from the
    model's default. A setting left at its default stays the model's choice, so the advisor may still lower the
    frames or the size to fit, and the refiner may tailor the default negative prompt. With no spec known (a model
    only a remote worker has) every setting is sent."""
    form = dict(
        resolution=resolution, num_frames=int(frames), fps=int(fps), steps=int(steps) if steps is not None else None,
        guidance_scale=float(guidance) if guidance is not None else None, scheduler=scheduler or None,
        cache=cache or None, negative_prompt=(negative or "").strip() or None,
    )
    if spec is None:
        return {key: value for key, value in form.items() if value is not None}
    defaults = {**spec.defaults(), "cache": spec.default_cache}
    takes = {
        "steps": spec.steps is not None, "guidance_scale": spec.guidance is not None, "scheduler": bool(spec.schedulers),
        "cache": bool(spec.caches), "negative_prompt": spec.negative_prompt is not None,
    }
    return {
        key: value for key, value in form.items()
        if value is not None and takes.get(key, True) and value != defaults.get(key)
    }


def carry_over(fields: dict[str, Any], source: ModelSpec | None, target: ModelSpec) -> dict[str, Any]:
    """Settings made for one model, for another: its nearest preset, a frame count and rate it allows, and none
    of the settings it does not take (the camera preview of a Wan 2.2 form: 720p becomes the preview's nearest
    preset, 121 frames stays 121 if allowed)."""
    carried: dict[str, Any] = {}
    if "resolution" in fields:
        side = (source.size.presets.get(fields["resolution"]) if source else None) or 512
        carried["resolution"] = min(target.size.presets, key=lambda name: abs(target.size.presets[name] - side))
    if "num_frames" in fields:
        carried["num_frames"] = target.frames.nearest(fields["num_frames"])[0]
    if "fps" in fields:
        carried["fps"] = min(max(fields["fps"], target.fps.min), target.fps.max)
    return carried


def spec_controls(spec: ModelSpec, lang: str = "en") -> list[dict[str, Any]]:
    """The settings controls for a model, as keyword arguments: its ranges, steps, choices and defaults; controls
    for what it does not take are hidden. Order: negative, resolution, frames, fps, steps, guidance, scheduler,
    cache."""
    caches: list[Any] = list(spec.caches)  # names as they are in English; "off" in words elsewhere
    if lang != "en":
        caches = [(tr(lang, "cache.off") if name == "off" else name, name) for name in spec.caches]
    return [
        dict(value=spec.negative_prompt or "", visible=spec.negative_prompt is not None),
        dict(choices=list(spec.size.presets), value=spec.size.default_preset),
        dict(minimum=spec.frames.min, maximum=spec.frames.max, step=spec.frames.step, value=spec.frames.default),
        dict(minimum=spec.fps.min, maximum=spec.fps.max, value=spec.fps.default),
        dict(**_slider(spec.steps), visible=spec.steps is not None),
        dict(**_slider(spec.guidance), visible=spec.guidance is not None),
        dict(choices=list(spec.schedulers), value=spec.default_scheduler, visible=bool(spec.schedulers)),
        dict(choices=caches, value=spec.default_cache, visible=bool(spec.caches)),
    ]


def spec_updates(spec: ModelSpec | None, lang: str = "en", values: dict[str, Any] | None = None) -> tuple[Any, ...]:
    """The controls redrawn when the model changes (left as they are for a model whose spec is not known here),
    with `values` (a past job's settings, by control) in place of the model's defaults."""
    if spec is None:
        return tuple(gr.update() if (values or {}).get(name) is None else gr.update(value=values[name]) for name in SETTINGS)
    updates = []
    for name, controls in zip(SETTINGS, spec_controls(spec, lang), strict=True):
        if (values or {}).get(name) is not None:
            controls = {**controls, "value": values[name]}
        updates.append(gr.update(**controls))
    return tuple(updates)


#: The spec-driven controls, in spec_controls' order, by the request field each sets.
SETTINGS = ("negative_prompt", "resolution", "num_frames", "fps", "steps", "guidance_scale", "scheduler", "cache")


def _slider(rule: Any) -> dict[str, Any]:
    return dict(minimum=rule.min, maximum=rule.max, value=rule.default) if rule is not None else {}


def model_keys(service: JobService) -> dict[str, str]:
    """What the page calls each offered model -> the model: a local folder by its folder's name, so the page never
    shows or sends a server path; hub ids and built-in names as they are."""
    keys: dict[str, str] = {}
    for model in service.models():
        key = Path(model).name if Path(model).expanduser().is_dir() else model
        while key in keys:
            key += "'"
        keys[key] = model
    return keys


def model_choices(service: JobService, lang: str = "en") -> list[tuple[str, str]]:
    """(label, key) pairs: the models this server offers (the only ones a job may name), each by its spec's label
    where the registry knows it ("Camera preview (instant, no model) — built in"), with where it is."""
    keys = {model: key for key, model in model_keys(service).items()}
    choices = []
    for model, where in service.models().items():
        choices.append((f"{model_label(model, keys[model], lang)} — {where_label(where, lang)}", keys[model]))
    return choices


def model_label(model: str, key: str, lang: str = "en") -> str:
    """A model for people: its spec's label, plus the folder's name for a local folder (e.g. "<label> · tiny")."""
    from i2v.models.registry import known_models

    known = known_models().get(model)
    if known:
        label = known[1].spec.label
        return tr(lang, f"model.label.{model}") if f"model.label.{model}" in STRINGS["en"] else label
    spec = spec_of(model)
    return f"{spec.label} · {key}" if spec else key


def where_label(where: str, lang: str) -> str:
    if where.startswith("on worker "):
        return tr(lang, "model.where.worker", name=where.removeprefix("on worker "))
    return tr(lang, f"model.where.{where}") if f"model.where.{where}" in STRINGS["en"] else where


def local_weight_bytes(model: str) -> int | None:
    """The weights a local model folder holds on disk; None for anything but a folder."""
    folder = Path(model).expanduser()
    if not folder.is_dir():
        return None
    return sum(path.stat().st_size for path in folder.rglob("*") if path.suffix in (".safetensors", ".bin", ".pt", ".ckpt"))


def fail(lang: str, key: str, **values: Any) -> gr.Error:
    """A user's mistake as a toast in their language, without a traceback in the server's log."""
    return gr.Error(tr(lang, key, **values), title=tr(lang, "error"), print_exception=False)


def explain(lang: str, error: I2VError) -> gr.Error:
    """A domain error as a toast: a heading in the page's language, the checker's own words after it."""
    message = str(error)
    if getattr(error, "code", "") == "invalid_input":
        message = tr(lang, "err.invalid_input", message=message)
    return gr.Error(message, title=tr(lang, "error"), print_exception=False)


def build_ui(service: JobService) -> gr.Blocks:
    t = I18N
    camera_preview = next(iter(sorted(built_in())), None)
    start = spec_of(default_model())

    def keys_now() -> dict[str, str]:
        return model_keys(service)  # workers come and go: asked at each use

    default_key = next((key for key, model in keys_now().items() if model == default_model()), default_model())

    def model_of(key: str | None) -> str:
        """The model a page key names; "" for a key the page never offered (a crafted call), which every check
        refuses, so a client cannot make the server read a folder it names."""
        return keys_now().get(key, "") if key else default_model()

    def key_of(model: str) -> str:
        return next((key for key, value in keys_now().items() if value == model), model)

    def refine_preview(lang, prompt: str, refiner: str):
        from i2v.refine import make_refiner

        lang = lang_of(lang)
        if not prompt or not prompt.strip():
            raise fail(lang, "err.no_prompt")
        if len(prompt) > MAX_PROMPT_CHARS:
            raise fail(lang, "err.prompt_long", n=len(prompt), limit=MAX_PROMPT_CHARS)
        try:
            refined = make_refiner(refiner).refine(prompt)  # type: ignore[arg-type]
        except I2VError as error:
            raise explain(lang, error) from None
        return refined.prompt, ", ".join(refined.tags), refine_words_markdown(refined, lang)

    def plan_preview(lang, image_path, key, resolution, frames, fps, steps, guidance, allow_degrade):
        from i2v.advisor import format_bytes

        lang = lang_of(lang)
        if not image_path:
            raise fail(lang, "err.no_image")
        model = model_of(key)
        spec = spec_of(model)
        fields = dict(
            model=model, allow_degrade=bool(allow_degrade),
            **spec_fields(spec, None, resolution, frames, fps, steps, guidance, None),
        )
        try:
            report = service.plan(fields, Path(image_path).read_bytes(), Path(image_path).name)
        except I2VError as error:
            raise explain(lang, error) from None
        label = spec.label if spec else model_label(model, key, lang)
        local = local_weight_bytes(model)
        full = report["stages"][report["peak_stage"]]["weights_bytes"]
        smaller = (local, full) if local is not None and local < full / 10 else None
        return ui_text.plan_markdown(lang, report, label, format_bytes, smaller)

    def form_request(lang, image_path, prompt, refined, negative, resolution, frames, fps, steps, guidance, seed, key,
                     scheduler, cache, refiner, allow_degrade, *, camera: bool = False) -> dict[str, Any]:
        """The request fields of the form, checked for the mistakes the page can name itself."""
        if not image_path:
            raise fail(lang, "err.no_image")
        model = model_of(key)
        form_spec = spec_of(model)
        settings = spec_fields(form_spec, negative, resolution, frames, fps, steps, guidance, scheduler, cache)
        if camera:
            if camera_preview is None:
                raise fail(lang, "err.no_camera")
            everything = {**(form_spec.defaults() if form_spec else {}), **settings}
            settings = carry_over(everything, form_spec, spec_for(camera_preview))
            model = camera_preview
        edited = (refined or "").strip()
        if edited and refiner == "rules" and edited == refine_preview(lang, prompt, refiner)[0]:
            edited = ""  # the preview as shown: let the job record the refiner, not "user"
        if not edited and not (prompt or "").strip():
            raise fail(lang, "err.no_prompt")
        return dict(
            prompt=edited or (prompt or "").strip(), seed=None if seed is None or int(seed) < 0 else int(seed),
            model=model, refiner="none" if edited else refiner, allow_degrade=bool(allow_degrade), **settings,
        )

    def submit(lang, advice, *form):
        lang = lang_of(lang)
        fields = form_request(lang, *form)
        if advice:  # what the advisor contributed (assessment, applied recommendation, troubleshooting), for the metadata
            fields["advice"] = advice
        yield from follow(lang, submit_or_explain(lang, fields, Path(form[0]).read_bytes(), Path(form[0]).name))

    def preview_camera(lang, *form):
        """The same job on camera-preview: what the camera will do, in a second, before spending GPU minutes. The
        form's settings are carried over to what the preview takes (its presets, frame rule and rates)."""
        lang = lang_of(lang)
        fields = form_request(lang, *form, camera=True)
        yield from follow(lang, submit_or_explain(lang, fields, Path(form[0]).read_bytes(), Path(form[0]).name))

    def submit_or_explain(lang: str, fields: dict[str, Any], data: bytes, name: str) -> str:
        try:
            return service.submit(fields, data, name).id
        except I2VError as error:
            raise explain(lang, error) from None

    def follow(lang: str, job_id: str):
        """Watch a job of this page: the bar every poll, the newest live preview when it changes, then the result."""
        shown_preview = None
        yield (job_id, gr.update(interactive=False), gr.update(interactive=True), *blank_result())
        while True:
            job = service.store.get(job_id)
            view = job_view(service, job)
            if job.state not in ("queued", "running"):
                break
            preview = gr.update()
            step = getattr(view, "preview_step", None)
            if step is not None and step != shown_preview:
                path = service.preview_file(job_id)
                if path is not None:
                    shown_preview = step
                    preview = gr.update(value=str(path), visible=True,
                                        label=tr(lang, "preview_at", i=step, n=view.progress.total or step))
            yield (job_id, gr.update(), gr.update(), progress_html(lang, view), preview, *(gr.update() for _ in range(6)))
            time.sleep(POLL_SECONDS)
        yield (job_id, gr.update(), gr.update(), *result_outputs(lang, job, view))

    def blank_result() -> tuple[Any, ...]:
        return (gr.update(), gr.update(value=None, visible=False), gr.update(value=None, visible=False), "",
                gr.update(value=None, visible=False), None, gr.update(visible=False), "")

    def result_outputs(lang: str, job, view: JobView) -> tuple[Any, ...]:
        """progress, live preview, video, card, download, details, troubleshooter, proposal: a finished job as the
        page shows it."""
        metadata = public_metadata(job)
        model = (job.request or {}).get("model") or default_model()
        card = ui_text.result_markdown(lang, view, metadata, model_label(model, key_of(model), lang))
        video = job.video_path if job.state == "succeeded" and job.video_path else None
        return (
            progress_html(lang, view), gr.update(value=None, visible=False), gr.update(value=video, visible=video is not None), card,
            gr.update(value=video, visible=video is not None), details(view, model_label(model, key_of(model))),
            gr.update(visible=troubleshootable(job.state, job.error)), "",
        )

    def public_metadata(job) -> dict[str, Any] | None:
        if job.state != "succeeded":
            return None
        try:
            return service.public_metadata(job)
        except (I2VError, OSError, ValueError):
            return None

    def cancel(lang, job_id: str | None):
        if job_id:
            try:
                service.cancel(job_id)
            except I2VError as error:
                gr.Warning(str(error), title=tr(lang_of(lang), "error"))
        return gr.update(interactive=False)

    def job_done():
        return gr.update(interactive=True), gr.update(interactive=False)

    def history(lang):
        """Finished jobs, newest first: the clip's thumbnail (the uploaded image for a failed or cancelled one) and a
        caption with state, prompt, seed, size and length."""
        lang = lang_of(lang)
        jobs, _ = service.store.list(limit=HISTORY_LIMIT)
        items, ids = [], []
        for job in jobs:
            if job.state in ("queued", "running"):
                continue
            picture = thumbnail(job)
            if picture is None:
                continue
            items.append((picture, ui_text.history_caption(lang, job, public_metadata(job))))
            ids.append(job.id)
        return items, ids

    def thumbnail(job) -> Any:
        if job.state == "succeeded" and job.thumbnail_path and Path(job.thumbnail_path).is_file():
            return job.thumbnail_path
        try:
            with Image.open(job.image_path) as image:
                image.thumbnail((256, 256))
                return image.convert("RGB")
        except (OSError, ValueError, TypeError):
            return None

    def pick(lang, ids: list[str], event: gr.SelectData):
        """A clip from the history: shown on the right, and its image, prompt and every setting back in the form."""
        lang = lang_of(lang)
        job = service.store.get(ids[event.index]) if event.index < len(ids) else None
        if job is None:
            raise fail(lang, "err.gone")
        request = job.request or {}
        seed = (public_metadata(job) or {}).get("seed", request.get("seed"))
        return (job.id, *result_outputs(lang, job, job_view(service, job)), *form_values(lang, job, request, seed), None)

    def form_values(lang: str, job, request: dict[str, Any], seed: int | None) -> tuple[Any, ...]:
        """A request back in the form: the job's image, the prompt, the model and every setting."""
        model = request.get("model") or default_model()
        spec = spec_of(model)
        values = {name: request.get(name) for name in SETTINGS}
        if spec is not None and values["negative_prompt"] is None:
            values["negative_prompt"] = spec.negative_prompt or ""
        try:
            with Image.open(job.image_path) as image:
                picture = image.convert("RGB")
        except (OSError, ValueError, TypeError):
            picture = gr.update()
        edited = request.get("refiner") == "none"
        return (
            picture, request.get("prompt", ""), request.get("prompt", "") if edited else "", "",
            request.get("refiner") or "rules", key_of(model), -1 if seed is None else seed,
            request.get("allow_degrade", False), *spec_updates(spec, lang, values),
        )

    def check_image(lang, image_path, key):
        """After an upload: the advisor's image check and recommended settings for the chosen model (issue 16)."""
        from i2v.advisor.assess import assess
        from i2v.advisor.recommend import advise
        from i2v.media.images import load_image

        lang = lang_of(lang)
        model = model_of(key)
        spec = spec_of(model)
        if not image_path or spec is None:
            return gr.update(visible=False), "", None, None
        try:
            loaded = load_image(Path(image_path).read_bytes(), name=Path(image_path).name)
            assessment = assess(loaded.image, spec=spec)
            device = None
            if service.queue.local_worker:  # the device jobs run on; a Redis pool's devices are the workers'
                from i2v.advisor.device import probe_device

                device = probe_device()
            recommendation = advise(loaded.image, None, model=model, assessment=assessment, device=device)
        except I2VError as error:
            raise explain(lang, error) from None
        record = {
            "assessment": assessment.summary(),
            "recommendation": {"preset": recommendation.preset, "applied": False, "fields": sorted(recommendation.request_fields())},
        }
        return gr.update(visible=True), ui_text.advice_html(lang, assessment, recommendation), recommendation.request_fields(), record

    def apply_advice(lang, key, fields, record):
        """The recommended settings into the form, and the clip's record saying they were applied."""
        if not fields:
            return (*(gr.update() for _ in SETTINGS), record)
        if record:
            record = {**record, "recommendation": {**record.get("recommendation", {}), "applied": True}}
        return (*spec_updates(spec_of(model_of(key)), lang_of(lang), fields), record)

    def troubleshoot(lang, job_id: str | None, symptom: str | None):
        """What went wrong? The advisor's next run for this job and symptom, put into the form to review and run."""
        from i2v.advisor.troubleshoot import propose

        lang = lang_of(lang)
        job = service.store.get(job_id) if job_id else None
        if job is None or job.state in ("queued", "running"):
            raise fail(lang, "err.pick_finished")
        origin = public_metadata(job) or {"request": {**(job.request or {})}}
        try:
            with Image.open(job.image_path) as picture:
                size = picture.size
            proposal = propose(origin, symptom or "stiff", from_job=job.id, image_size=size)
        except I2VError as error:
            raise explain(lang, error) from None
        except OSError:
            raise fail(lang, "err.gone") from None
        request = {**proposal.request, "model": proposal.request.get("model") or (job.request or {}).get("model")}
        return (ui_text.proposal_html(lang, proposal), *form_values(lang, job, request, request.get("seed")),
                proposal.request.get("advice"))

    def rerun(lang, job_id: str | None):
        lang = lang_of(lang)
        job = service.store.get(job_id) if job_id else None
        if job is None:
            raise fail(lang, "err.pick")
        fields = {key: value for key, value in job.request.items() if key != "image"}
        seed = (public_metadata(job) or {}).get("seed")
        if seed is not None:
            fields["seed"] = seed
        try:
            data = Path(job.image_path).read_bytes()
        except OSError:
            raise fail(lang, "err.gone") from None
        yield from follow(lang, submit_or_explain(lang, fields, data, Path(job.image_path).name))

    def delete(lang, job_id: str | None):
        lang = lang_of(lang)
        job = service.store.get(job_id) if job_id else None
        if job is None or job.state in ("queued", "running"):
            raise fail(lang, "err.pick_finished")
        service.delete(job.id)
        items, ids = history(lang)
        return items, ids, None, gr.update(value=None, visible=False), "", gr.update(value=None, visible=False), idle_html(lang)

    def on_load(lang):
        lang = lang_of(lang)
        items, ids = history(lang)
        return (
            gr.update(choices=model_choices(service, lang)),
            gr.update(choices=refiner_choices(lang)),
            spec_updates(spec_of(default_model()), lang)[SETTINGS.index("cache")],
            idle_html(lang), items, ids, workers(lang), gr.update(label=tr(lang, "image")), gr.update(label=tr(lang, "video")),
            gr.update(choices=symptom_choices(lang)),
        )

    def on_model(lang, key):
        return spec_updates(spec_of(model_of(key)), lang_of(lang))

    def workers(lang):
        from i2v.advisor import format_bytes

        return ui_text.workers_markdown(lang_of(lang), service.workers(), format_bytes)

    # Gradio's upload cache, pruned: files older than a day go, checked hourly.
    with gr.Blocks(title="i2v", delete_cache=(3600, 86400)) as demo:
        lang = gr.Textbox(value="en", visible=False, elem_id="lang")
        job_id = gr.State(None)
        advice = gr.State(None)  # the advice record the next run carries into its metadata
        advice_fields = gr.State(None)
        history_ids = gr.State([])
        gr.Markdown(t("title"), elem_id="title")
        with gr.Row(equal_height=False):
            with gr.Column(scale=5, elem_id="inputs"):
                # Media components show a translation key as "[object Object]": their labels are set on load.
                image = gr.Image(label=tr("en", "image"), type="filepath", sources=["upload", "clipboard"], height=300,
                                 format="png", elem_id="image")  # a clip's image put back from the history stays lossless
                with gr.Column(visible=False, elem_id="advice") as advice_box:  # the advisor's image check (issue 16)
                    advice_card = gr.HTML(elem_id="advice_card")
                    apply_button = gr.Button(t("advice.apply"), size="sm", elem_id="apply_advice")
                prompt = gr.Textbox(label=t("prompt"), placeholder=t("prompt_placeholder"), lines=2, max_length=MAX_PROMPT_CHARS, elem_id="prompt")
                with gr.Row():
                    refiner = gr.Radio(refiner_choices("en"), value="rules", label=t("refiner"), elem_id="refiner", scale=3)
                    refine_button = gr.Button(t("refine"), elem_id="refine", scale=1)
                refined = gr.Textbox(label=t("refined"), lines=2, max_length=MAX_PROMPT_CHARS, elem_id="refined")
                refine_words = gr.Markdown(elem_id="refine_words")
                tags = gr.Textbox(label=t("tags"), interactive=False, elem_id="tags")
                initial = spec_controls(start or spec_for(camera_preview))
                model = gr.Dropdown(model_choices(service), value=default_key, label=t("model"), elem_id="model")
                with gr.Row():
                    resolution = gr.Dropdown(label=t("resolution"), elem_id="resolution", **initial[1])
                    seed = gr.Number(value=-1, precision=0, label=t("seed"), elem_id="seed")
                frames = gr.Slider(label=t("frames"), elem_id="frames", **initial[2])
                with gr.Accordion(t("advanced"), open=False, elem_id="advanced"):
                    negative = gr.Textbox(label=t("negative"), lines=2, elem_id="negative", **initial[0])
                    fps = gr.Slider(step=1, label=t("fps"), elem_id="fps", **initial[3])
                    steps = gr.Slider(step=1, label=t("steps"), elem_id="steps", **initial[4])
                    guidance = gr.Slider(step=0.5, label=t("guidance"), elem_id="guidance", **initial[5])
                    scheduler = gr.Radio(label=t("scheduler"), elem_id="scheduler", **initial[6])
                    cache = gr.Radio(label=t("cache"), elem_id="cache", **initial[7])
                    allow_degrade = gr.Checkbox(
                        value=GenerationRequest.model_fields["allow_degrade"].default, label=t("degrade"), elem_id="allow_degrade"
                    )
                settings = [negative, resolution, frames, fps, steps, guidance, scheduler, cache]
                plan_button = gr.Button(t("plan"), size="sm", elem_id="plan")
                plan_box = gr.Markdown(elem_id="plan_box")
                with gr.Row():
                    generate_button = gr.Button(t("generate"), variant="primary", size="lg", elem_id="generate", scale=2)
                    preview_button = gr.Button(t("preview_camera"), elem_id="preview_camera", scale=2)
                    cancel_button = gr.Button(t("cancel"), variant="stop", interactive=False, elem_id="cancel", scale=1)
            with gr.Column(scale=6, elem_id="outputs"):
                progress = gr.HTML(elem_id="progress")
                live_preview = gr.Image(label=tr("en", "live_preview"), type="filepath", interactive=False, visible=False,
                                        height=320, elem_id="live_preview")
                video = gr.Video(label=tr("en", "video"), elem_id="video", autoplay=True, loop=True, interactive=False, visible=False)
                card = gr.HTML(elem_id="result")
                download = gr.DownloadButton(t("download"), visible=False, elem_id="download")
                with gr.Accordion(t("details"), open=False, elem_id="details_box"):
                    info = gr.JSON(elem_id="details")
                with gr.Column(visible=False, elem_id="troubleshoot") as trouble_box:  # "What went wrong?" (issue 16)
                    with gr.Row():
                        symptom = gr.Dropdown(symptom_choices("en"), value="stiff", label=t("trouble"), elem_id="symptom", scale=3)
                        propose_button = gr.Button(t("trouble.propose"), elem_id="propose", scale=1)
                    proposal_card = gr.HTML(elem_id="proposal")
        with gr.Accordion(t("history"), open=True):
            gallery = gr.Gallery(label=str(t("history_gallery")), columns=6, height=300, object_fit="contain",
                                 fit_columns=False, elem_id="history", allow_preview=False)
            with gr.Row():
                refresh = gr.Button(t("refresh"), size="sm", elem_id="refresh")
                rerun_button = gr.Button(t("rerun"), size="sm", elem_id="rerun")
                delete_button = gr.Button(t("delete"), size="sm", variant="stop", elem_id="delete")
        with gr.Accordion(t("workers"), open=False):
            workers_box = gr.Markdown(elem_id="workers")
            refresh_workers = gr.Button(t("refresh"), size="sm")

        form = [image, prompt, refined, negative, resolution, frames, fps, steps, guidance, seed, model, scheduler, cache, refiner, allow_degrade]
        results = [progress, live_preview, video, card, download, info, trouble_box, proposal_card]
        run_outputs = [job_id, generate_button, cancel_button, *results]
        restore = [image, prompt, refined, tags, refiner, model, seed, allow_degrade, *settings]
        demo.load(on_load, lang, [model, refiner, cache, progress, gallery, history_ids, workers_box, image, video, symptom], js=WITH_LANG)
        refresh_workers.click(workers, lang, workers_box, js=WITH_LANG)
        model.input(on_model, [lang, model], settings, js=WITH_LANG)
        plan_button.click(plan_preview, [lang, image, model, resolution, frames, fps, steps, guidance, allow_degrade], plan_box, js=WITH_LANG)
        refine_button.click(refine_preview, [lang, prompt, refiner], [refined, tags, refine_words], js=WITH_LANG)
        for button, function, inputs in ((generate_button, submit, [lang, advice, *form]), (preview_button, preview_camera, [lang, *form])):
            run = button.click(function, inputs, run_outputs, js=WITH_LANG, concurrency_limit=None)
            run.then(job_done, None, [generate_button, cancel_button]).then(history, lang, [gallery, history_ids], js=WITH_LANG)
        cancel_button.click(cancel, [lang, job_id], cancel_button, js=WITH_LANG)
        refresh.click(history, lang, [gallery, history_ids], js=WITH_LANG)
        gallery.select(pick, [lang, history_ids], [job_id, *results, *restore, advice], js=WITH_LANG)
        image.upload(check_image, [lang, image, model], [advice_box, advice_card, advice_fields, advice], js=WITH_LANG)
        image.clear(lambda: (gr.update(visible=False), "", None, None), None, [advice_box, advice_card, advice_fields, advice])
        apply_button.click(apply_advice, [lang, model, advice_fields, advice], [*settings, advice], js=WITH_LANG)
        propose_button.click(troubleshoot, [lang, job_id, symptom], [proposal_card, *restore, advice], js=WITH_LANG)
        rerun_run = rerun_button.click(rerun, [lang, job_id], run_outputs, js=WITH_LANG, concurrency_limit=None)
        rerun_run.then(job_done, None, [generate_button, cancel_button]).then(history, lang, [gallery, history_ids], js=WITH_LANG)
        delete_button.click(delete, [lang, job_id], [gallery, history_ids, job_id, video, card, download, progress], js=WITH_LANG)
    return demo


def troubleshootable(state: str, error: str | None) -> bool:
    """Whether "What went wrong?" has something to propose: a finished clip, or a failure the advisor has a row for
    (running out of memory). Not for a cancel, nor for a failure no setting fixes (a model that cannot load)."""
    if state == "succeeded":
        return True
    return state == "failed" and "out of memory" in (error or "").lower()


def symptom_choices(lang: str) -> list[tuple[str, str]]:
    from i2v.advisor.troubleshoot import SYMPTOMS

    return [(tr(lang, f"symptom.{name}") if f"symptom.{name}" in STRINGS["en"] else row.label, name) for name, row in SYMPTOMS.items()]


def refiner_choices(lang: str) -> list[tuple[str, str]]:
    return [(tr(lang, f"refiner.{name}"), name) for name in ("rules", "llm", "none")]


def details(view: JobView, model: str) -> dict[str, Any]:
    """What ran, for the folded JSON: no server paths (the model by its label), no links that need the API token."""
    settings = {**view.request, "model": model}
    return json.loads(json.dumps({
        "id": view.id, "state": view.state, "refined_prompt": view.refined_prompt, "settings": settings,
        "plan": view.plan, "warnings": view.warnings, "timings": view.timings, "error": view.error,
    }, default=str))


def mount_ui(app: FastAPI, service: JobService) -> FastAPI:
    """Mount the page on the API's app with the file rules a launched Gradio app has, and narrower ones.

    `gr.mount_gradio_app` leaves the Blocks un-launched, and Gradio skips its path checks on file inputs for an
    un-launched app: any client could then name any server file as an "uploaded" image and have it copied into
    the cache and served. Marking the Blocks launched (Gradio 6.31 reads `has_launched` in exactly that check)
    turns them on: inputs must come from Gradio's upload folder. Gradio's cache is a folder of ours in the data
    folder (unless GRADIO_TEMP_DIR says otherwise), not the /tmp/gradio every Gradio app on the host shares, and
    `GradioGuard` serves from it and from the clips only, and refuses files named by URL.
    """
    os.environ.setdefault("GRADIO_TEMP_DIR", str(service.settings.subfolder("gradio")))
    token = service.settings.api_token
    auth = (lambda user, password: secrets.compare_digest(password.encode(), token.encode())) if token else None
    demo = build_ui(service)
    outputs = service.settings.subfolder("outputs")
    app = gr.mount_gradio_app(
        app, demo, path="", allowed_paths=[str(outputs)], auth=auth, i18n=I18N,
        footer_links=["api", "settings"], max_file_size=service.settings.max_upload_bytes, css=CSS, head=HEAD,
    )
    if not hasattr(demo, "has_launched"):
        raise RuntimeError("this Gradio has no Blocks.has_launched: its file-path checks cannot be turned on; pin gradio 6.x")
    demo.has_launched = True
    app.add_middleware(GradioGuard, cache=Path(os.environ["GRADIO_TEMP_DIR"]), outputs=outputs)
    return app
