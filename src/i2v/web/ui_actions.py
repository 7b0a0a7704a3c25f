"""What the page's buttons do: one `Page` of actions over a `JobService`, the form by name (`Form`), and the
helpers that turn a model's spec into controls and request fields. The layout and its wiring live in ui.py.

The page reads jobs through `JobService` only (never its store, nor a job's file paths directly) and shows
server-written text in the page's language; every action is `guarded`, so an unexpected failure reaches the page
as our one line, never a Python exception's text.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import gradio as gr
from PIL import Image

from i2v.errors import MEMORY_EXHAUSTED, I2VError, JobNotFoundError
from i2v.jobs.service import JobService
from i2v.jobs.store import Job
from i2v.models.registry import built_in, spec_for
from i2v.models.spec import ModelSpec
from i2v.refine.base import RefinedPrompt
from i2v.request import MAX_PROMPT_CHARS, default_model
from i2v.web import ui_text
from i2v.web.names import hide_paths, model_name
from i2v.web.ui_text import STRINGS, idle_html, lang_of, progress_html, tr
from i2v.web.views import JobView, job_view

log = logging.getLogger(__name__)
POLL_SECONDS = 0.3
HISTORY_LIMIT = 48


@dataclass(frozen=True)
class Form:
    """The form's values by name; Gradio hands them over in FORM_FIELDS' order (`Form.of`)."""

    image: str | None
    prompt: str | None
    refined: str | None
    negative_prompt: str | None
    resolution: str | None
    num_frames: Any
    fps: Any
    steps: Any
    guidance_scale: Any
    seed: Any
    model: str | None
    scheduler: str | None
    cache: str | None
    refiner: str | None
    allow_degrade: Any

    @classmethod
    def of(cls, values: Iterable[Any]) -> Form:
        return cls(**dict(zip(FORM_FIELDS, values, strict=True)))

    def settings(self, spec: ModelSpec | None) -> dict[str, Any]:
        return spec_fields(spec, self.negative_prompt, self.resolution, self.num_frames, self.fps, self.steps,
                           self.guidance_scale, self.scheduler, self.cache)


#: The form's components in the order the page passes them (each event's inputs after the language).
FORM_FIELDS = tuple(field.name for field in fields(Form))


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
        key = model_name(model)
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
    """A domain error as a toast: a heading in the page's language, the checker's own words after it (any server
    path in them cut to its last part)."""
    message = hide_paths(str(error)) or ""
    if getattr(error, "code", "") == "invalid_input":
        key = "err.invalid_image" if getattr(error, "field", None) == "image" else "err.invalid_input"
        message = tr(lang, key, message=message)
    return gr.Error(message, title=tr(lang, "error"), print_exception=False)


def guarded(function):
    """A UI function whose unexpected failures (a hostile value a crafted call sent, a bug) reach the page as our
    one line in its language, the traceback going to the server's log only: never a Python exception's text."""

    def refusal(args: tuple[Any, ...]) -> gr.Error:
        log.exception("UI function %s failed", function.__name__)
        return fail(lang_of(args[0] if args and isinstance(args[0], str) else None), "err.server")

    if inspect.isgeneratorfunction(function):
        @functools.wraps(function)
        def follow_guarded(*args, **kwargs):
            try:
                yield from function(*args, **kwargs)
            except gr.Error:
                raise
            except Exception:  # noqa: BLE001 - turned into the page's own words, logged in full
                raise refusal(args) from None

        return follow_guarded

    @functools.wraps(function)
    def call_guarded(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except gr.Error:
            raise
        except Exception:  # noqa: BLE001 - turned into the page's own words, logged in full
            raise refusal(args) from None

    return call_guarded


def shown(view: JobView) -> JobView:
    """A job as the page shows it: its error and notes without server paths."""
    return view.model_copy(update={"error": hide_paths(view.error), "warnings": [hide_paths(note) for note in view.warnings]})




def troubleshootable(state: str, error_code: str | None) -> bool:
    """Whether "What went wrong?" has something to propose: a finished clip, or a failure the advisor has a row for
    (running out of memory, by the error's code). Not for a cancel, nor for a failure no setting fixes (a model
    that cannot load)."""
    return state == "succeeded" or (state == "failed" and error_code == MEMORY_EXHAUSTED)


def symptom_choices(lang: str) -> list[tuple[str, str]]:
    from i2v.advisor.troubleshoot import SYMPTOMS

    return [(tr(lang, f"symptom.{name}") if f"symptom.{name}" in STRINGS["en"] else row.label, name) for name, row in SYMPTOMS.items()]


def refiner_choices(lang: str) -> list[tuple[str, str]]:
    return [(tr(lang, f"refiner.{name}"), name) for name in ("rules", "llm", "none")]


def blank_result() -> tuple[Any, ...]:
    """progress, live preview, video, card, download, details, troubleshooter, proposal: cleared for a new run."""
    return (gr.update(), gr.update(value=None, visible=False), gr.update(value=None, visible=False), "",
            gr.update(value=None, visible=False), None, gr.update(visible=False), "")


def details(view: JobView, model: str) -> dict[str, Any]:
    """What ran, for the folded JSON: no server paths (the model by its label), no links that need the API token."""
    settings = {**view.request, "model": model}
    return json.loads(json.dumps({
        "id": view.id, "state": view.state, "refined_prompt": view.refined_prompt, "settings": settings,
        "plan": view.plan, "warnings": view.warnings, "timings": view.timings, "error": view.error,
    }, default=str))




class Page:
    """The actions of one page (all its visitors): each method is an event's function, wired in ui.py."""

    def __init__(self, service: JobService):
        self.service = service
        self.camera_preview = next(iter(sorted(built_in())), None)

    # -- models: the page names each by a key, never a server path -------------------------------------------

    def keys(self) -> dict[str, str]:
        return model_keys(self.service)  # workers come and go: asked at each use

    def default_key(self) -> str:
        return self.key_of(default_model())

    def model_of(self, key: str | None) -> str:
        """The model a page key names; "" for a key the page never offered (a crafted call), which every check
        refuses, so a client cannot make the server read a folder it names."""
        return self.keys().get(key, "") if key else default_model()

    def key_of(self, model: str) -> str:
        return next((key for key, value in self.keys().items() if value == model), model)

    # -- jobs, through the service only --------------------------------------------------------------------

    def job(self, job_id: str | None) -> Job | None:
        try:
            return self.service.get(job_id) if isinstance(job_id, str) else None
        except JobNotFoundError:
            return None

    def job_file(self, job: Job, what: str) -> Path | None:
        try:
            return self.service.file(job, what)
        except JobNotFoundError:
            return None

    def public_metadata(self, job: Job) -> dict[str, Any] | None:
        if job.state != "succeeded":
            return None
        try:
            return self.service.public_metadata(job)
        except (I2VError, OSError, ValueError):
            return None

    def job_image(self, job: Job) -> Image.Image | None:
        """The job's uploaded image, decoded (it passed the checks at submit), or None when it is gone."""
        path = self.job_file(job, "image")
        try:
            with Image.open(path) as image:  # type: ignore[arg-type]
                return image.convert("RGB")
        except (OSError, ValueError, TypeError, AttributeError):
            return None

    # -- the form ------------------------------------------------------------------------------------------

    def refine_preview(self, lang, prompt: str, refiner: str, key: str | None = None):
        """The prompt as the job would get it: written for the chosen model's prompt budget and style."""
        from i2v.refine import make_refiner

        lang = lang_of(lang)
        if not prompt or not prompt.strip():
            raise fail(lang, "err.no_prompt")
        if len(prompt) > MAX_PROMPT_CHARS:
            raise fail(lang, "err.prompt_long", n=len(prompt), limit=MAX_PROMPT_CHARS)
        try:
            refined = make_refiner(refiner, spec=spec_of(self.model_of(key))).refine(prompt)  # type: ignore[arg-type]
        except I2VError as error:
            raise explain(lang, error) from None
        return refined.prompt, ", ".join(refined.tags), refine_words_markdown(refined, lang)

    def plan_preview(self, lang, *values):
        from i2v.advisor import format_bytes

        lang, form = lang_of(lang), Form.of(values)
        if not form.image:
            raise fail(lang, "err.no_image")
        model = self.model_of(form.model)
        spec = spec_of(model)
        settings = {key: value for key, value in form.settings(spec).items() if key not in ("negative_prompt", "scheduler", "cache")}
        fields = dict(model=model, allow_degrade=bool(form.allow_degrade), **settings)
        try:
            report = self.service.plan(fields, Path(form.image).read_bytes(), Path(form.image).name)
        except I2VError as error:
            raise explain(lang, error) from None
        label = spec.label if spec else model_label(model, form.model or "", lang)
        local = local_weight_bytes(model)
        full = report["stages"][report["peak_stage"]]["weights_bytes"]
        smaller = (local, full) if local is not None and local < full / 10 else None
        return ui_text.plan_markdown(lang, report, label, format_bytes, smaller)

    def form_request(self, lang: str, form: Form, *, camera: bool = False) -> dict[str, Any]:
        """The request fields of the form, checked for the mistakes the page can name itself."""
        if not form.image:
            raise fail(lang, "err.no_image")
        model = self.model_of(form.model)
        form_spec = spec_of(model)
        settings = form.settings(form_spec)
        if camera:
            if self.camera_preview is None:
                raise fail(lang, "err.no_camera")
            everything = {**(form_spec.defaults() if form_spec else {}), **settings}
            settings = carry_over(everything, form_spec, spec_for(self.camera_preview))
            model = self.camera_preview
        edited = (form.refined or "").strip()
        if edited and form.refiner == "rules" and edited == self.refine_preview(lang, form.prompt, form.refiner, form.model)[0]:
            edited = ""  # the preview as shown: let the job record the refiner, not "user"
        if not edited and not (form.prompt or "").strip():
            raise fail(lang, "err.no_prompt")
        seed = form.seed
        return dict(
            prompt=edited or (form.prompt or "").strip(), seed=None if seed is None or int(seed) < 0 else int(seed),
            model=model, refiner="none" if edited else form.refiner, allow_degrade=bool(form.allow_degrade), **settings,
        )

    # -- running -------------------------------------------------------------------------------------------

    def submit(self, lang, advice, *values):
        """The form as a job: its id, which `watch` then follows (outside the heavy functions' limit)."""
        lang, form = lang_of(lang), Form.of(values)
        fields = self.form_request(lang, form)
        if advice:  # what the advisor contributed (assessment, applied recommendation, troubleshooting), for the metadata
            fields["advice"] = advice
        return self.submit_or_explain(lang, fields, Path(form.image).read_bytes(), Path(form.image).name)

    def preview_camera(self, lang, *values):
        """The same job on camera-preview: what the camera will do, in a second, before spending GPU minutes. The
        form's settings are carried over to what the preview takes (its presets, frame rule and rates)."""
        lang, form = lang_of(lang), Form.of(values)
        fields = self.form_request(lang, form, camera=True)
        return self.submit_or_explain(lang, fields, Path(form.image).read_bytes(), Path(form.image).name)

    def rerun(self, lang, job_id: str | None):
        lang = lang_of(lang)
        job = self.job(job_id)
        if job is None:
            raise fail(lang, "err.pick")
        fields = {key: value for key, value in job.request.items() if key != "image"}
        seed = (self.public_metadata(job) or {}).get("seed")
        if seed is not None:
            fields["seed"] = seed
        image = self.job_file(job, "image")
        if image is None:
            raise fail(lang, "err.gone")
        return self.submit_or_explain(lang, fields, image.read_bytes(), image.name)

    def submit_or_explain(self, lang: str, fields: dict[str, Any], data: bytes, name: str) -> str:
        try:
            return self.service.submit(fields, data, name).id
        except I2VError as error:
            raise explain(lang, error) from None

    def watch(self, lang, job_id: str):
        """Follow a job of this page: the bar every poll, the newest live preview when it changes, then the result."""
        lang = lang_of(lang)
        shown_preview = None
        yield (job_id, gr.update(interactive=False), gr.update(interactive=True), *blank_result())
        while True:
            job = self.service.get(job_id)
            view = shown(job_view(self.service, job))
            if job.state not in ("queued", "running"):
                break
            preview = gr.update()
            step = view.preview_step
            if step is not None and step != shown_preview:
                path = self.service.preview_file(job_id)
                if path is not None:
                    shown_preview = step
                    preview = gr.update(value=str(path), visible=True,
                                        label=tr(lang, "preview_at", i=step, n=view.progress.total or step))
            yield (job_id, gr.update(), gr.update(), progress_html(lang, view), preview, *(gr.update() for _ in range(6)))
            time.sleep(POLL_SECONDS)
        yield (job_id, gr.update(), gr.update(), *self.result_outputs(lang, job, view))

    def result_outputs(self, lang: str, job: Job, view: JobView) -> tuple[Any, ...]:
        """progress, live preview, video, card, download, details, troubleshooter, proposal: a finished job as the
        page shows it."""
        metadata = self.public_metadata(job)
        model = (job.request or {}).get("model") or default_model()
        label = model_label(model, self.key_of(model), lang)
        card = ui_text.result_markdown(lang, view, metadata, label)
        video = self.job_file(job, "video") if job.state == "succeeded" else None
        return (
            progress_html(lang, view), gr.update(value=None, visible=False), gr.update(value=video, visible=video is not None), card,
            gr.update(value=video, visible=video is not None), details(view, model_label(model, self.key_of(model))),
            gr.update(visible=troubleshootable(job.state, job.error_code)), "",
        )

    def cancel(self, lang, job_id: str | None):
        if job_id:
            try:
                self.service.cancel(job_id)
            except I2VError as error:
                gr.Warning(hide_paths(str(error)), title=tr(lang_of(lang), "error"))
        return gr.update(interactive=False)

    @staticmethod
    def job_done():
        return gr.update(interactive=True), gr.update(interactive=False)

    # -- history -------------------------------------------------------------------------------------------

    def history(self, lang):
        """Finished jobs, newest first: the clip's thumbnail (the uploaded image for a failed or cancelled one) and a
        caption with state, prompt, seed, size and length."""
        lang = lang_of(lang)
        items, ids = [], []
        for job in self.service.recent(HISTORY_LIMIT):
            if job.state in ("queued", "running"):
                continue
            picture = self.thumbnail(job)
            if picture is None:
                continue
            items.append((picture, ui_text.history_caption(lang, job, self.public_metadata(job))))
            ids.append(job.id)
        return items, ids

    def thumbnail(self, job: Job) -> Any:
        thumbnail = self.job_file(job, "thumbnail") if job.state == "succeeded" else None
        if thumbnail is not None:
            return str(thumbnail)
        image = self.job_image(job)
        if image is not None:
            image.thumbnail((256, 256))
        return image

    def pick(self, lang, ids: list[str], event: gr.SelectData):
        """A clip from the history: shown on the right, and its image, prompt and every setting back in the form."""
        lang = lang_of(lang)
        job = self.job(ids[event.index]) if event.index < len(ids) else None
        if job is None:
            raise fail(lang, "err.gone")
        request = job.request or {}
        seed = (self.public_metadata(job) or {}).get("seed", request.get("seed"))
        return (job.id, *self.result_outputs(lang, job, shown(job_view(self.service, job))),
                *self.form_values(lang, job, request, seed), None)

    def form_values(self, lang: str, job: Job, request: dict[str, Any], seed: int | None) -> tuple[Any, ...]:
        """A request back in the form: the job's image, the prompt, the model and every setting."""
        model = request.get("model") or default_model()
        spec = spec_of(model)
        values = {name: request.get(name) for name in SETTINGS}
        if spec is not None and values["negative_prompt"] is None:
            values["negative_prompt"] = spec.negative_prompt or ""
        picture = self.job_image(job)
        edited = request.get("refiner") == "none"
        return (
            gr.update() if picture is None else picture, request.get("prompt", ""), request.get("prompt", "") if edited else "",
            "", request.get("refiner") or "rules", self.key_of(model), -1 if seed is None else seed,
            request.get("allow_degrade", False), *spec_updates(spec, lang, values),
        )

    def delete(self, lang, job_id: str | None):
        lang = lang_of(lang)
        job = self.job(job_id)
        if job is None or job.state in ("queued", "running"):
            raise fail(lang, "err.pick_finished")
        self.service.delete(job.id)
        items, ids = self.history(lang)
        return items, ids, None, gr.update(value=None, visible=False), "", gr.update(value=None, visible=False), idle_html(lang)

    # -- the advisor ---------------------------------------------------------------------------------------

    def check_image(self, lang, image_path, key):
        """After an upload: the advisor's image check and recommended settings for the chosen model (issue 16)."""
        from i2v.advisor.assess import assess
        from i2v.advisor.recommend import advise
        from i2v.media.images import load_image

        lang = lang_of(lang)
        model = self.model_of(key)
        spec = spec_of(model)
        if not image_path or spec is None:
            return gr.update(visible=False), "", None, None
        try:
            loaded = load_image(Path(image_path).read_bytes(), name=Path(image_path).name)
            assessment = assess(loaded.image, spec=spec)
            device = None
            if self.service.queue.local_worker:  # the device jobs run on; a Redis pool's devices are the workers'
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

    def apply_advice(self, lang, key, fields, record):
        """The recommended settings into the form, and the clip's record saying they were applied."""
        if not fields:
            return (*(gr.update() for _ in SETTINGS), record)
        if record:
            record = {**record, "recommendation": {**record.get("recommendation", {}), "applied": True}}
        return (*spec_updates(spec_of(self.model_of(key)), lang_of(lang), fields), record)

    def troubleshoot(self, lang, job_id: str | None, symptom: str | None):
        """What went wrong? The advisor's next run for this job and symptom, put into the form to review and run."""
        from i2v.advisor.troubleshoot import propose

        lang = lang_of(lang)
        job = self.job(job_id)
        if job is None or job.state in ("queued", "running"):
            raise fail(lang, "err.pick_finished")
        origin = self.public_metadata(job) or {"request": {**(job.request or {})}}
        image = self.job_image(job)
        if image is None:
            raise fail(lang, "err.gone")
        try:
            proposal = propose(origin, symptom or "stiff", from_job=job.id, image_size=image.size)
        except I2VError as error:
            raise explain(lang, error) from None
        request = {**proposal.request, "model": proposal.request.get("model") or (job.request or {}).get("model")}
        return (ui_text.proposal_html(lang, proposal), *self.form_values(lang, job, request, request.get("seed")),
                proposal.request.get("advice"))

    # -- the page as a whole -------------------------------------------------------------------------------

    def on_load(self, lang):
        lang = lang_of(lang)
        items, ids = self.history(lang)
        return (
            gr.update(choices=model_choices(self.service, lang)),
            gr.update(choices=refiner_choices(lang)),
            spec_updates(spec_of(default_model()), lang)[SETTINGS.index("cache")],
            idle_html(lang), items, ids, self.workers(lang), gr.update(label=tr(lang, "image")), gr.update(label=tr(lang, "video")),
            gr.update(choices=symptom_choices(lang)),
        )

    def on_model(self, lang, key):
        return spec_updates(spec_of(self.model_of(key)), lang_of(lang))

    def workers(self, lang):
        from i2v.advisor import format_bytes

        return ui_text.workers_markdown(lang_of(lang), self.service.workers(), format_bytes)
