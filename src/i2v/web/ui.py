"""The Gradio page: image + prompt, a refine preview you can edit, advanced settings, live progress with cancel,
the video, the JSON of what was run, and a history that survives restarts. English and Chinese, picked from the
browser (and switchable in Gradio's settings menu)."""

from __future__ import annotations

import os
import re
import secrets
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import gradio as gr
from fastapi import FastAPI

from i2v.errors import I2VError
from i2v.jobs.service import JobService, JobView
from i2v.models.base import STAGE_VERBS
from i2v.models.registry import built_in, spec_for
from i2v.models.spec import ModelSpec
from i2v.refine.base import RefinedPrompt
from i2v.request import MAX_PROMPT_CHARS, GenerationRequest, default_model
from i2v.web.security import GradioGuard

POLL_SECONDS = 0.3
STRINGS = {
    "en": {
        "title": "i2v — image to video",
        "prompt": "Describe the motion (any language)",
        "refine": "Preview refined prompt",
        "refined": "Refined English prompt (editable; used as typed when not empty)",
        "tags": "Motion / camera tags",
        "advanced": "Advanced settings",
        "negative": "Negative prompt",
        "resolution": "Resolution",
        "frames": "Frames",
        "fps": "Playback fps",
        "steps": "Steps",
        "guidance": "Guidance scale",
        "seed": "Seed (-1 = random)",
        "model": "Model",
        "scheduler": "Scheduler",
        "cache": "Step cache (faster; frames differ slightly from off)",
        "refiner": "Prompt refiner",
        "generate": "Generate",
        "cancel": "Cancel",
        "status": "Status",
        "details": "Refined prompt, settings and output",
        "history": "History",
        "refresh": "Refresh history",
        "rerun": "Re-run with the same seed",
        "delete": "Delete selected",
        "degrade": "Allow fewer frames / lower resolution if memory is short",
        "plan": "Check memory plan",
        "preview_camera": "Preview camera (instant, no model)",
    },
    "zh": {
        "title": "i2v — 图片生成视频",
        "prompt": "描述想要的动作（中文或英文）",
        "refine": "预览优化后的提示词",
        "refined": "优化后的英文提示词（可编辑；非空时按原样使用）",
        "tags": "运动 / 镜头标签",
        "advanced": "高级设置",
        "negative": "反向提示词",
        "resolution": "分辨率",
        "frames": "帧数",
        "fps": "播放帧率",
        "steps": "步数",
        "guidance": "引导系数",
        "seed": "随机种子（-1 为随机）",
        "model": "模型",
        "scheduler": "采样器",
        "cache": "步骤缓存（更快；画面与关闭时略有不同）",
        "refiner": "提示词优化",
        "generate": "生成",
        "cancel": "取消",
        "status": "状态",
        "details": "优化提示词、设置与结果",
        "history": "历史记录",
        "refresh": "刷新历史",
        "rerun": "用相同种子重新生成",
        "delete": "删除所选",
        "degrade": "显存不足时允许减少帧数或降低分辨率",
        "plan": "检查显存规划",
        "preview_camera": "预览镜头运动（即时，无需模型）",
    },
}
I18N = gr.I18n(en=STRINGS["en"], zh=STRINGS["zh"], **{"zh-CN": STRINGS["zh"], "zh-TW": STRINGS["zh"]})


def refine_words_markdown(refined: RefinedPrompt) -> str:
    """Beside the refined prompt: which words the dictionary translated and which the prompt leaves out, so the
    user can check them and edit the prompt."""

    def words(items: Iterable[str]) -> str:
        return ", ".join(re.sub(r"([\\`*_{}\[\]()#+\-.!|<>~])", r"\\\1", item) for item in items)

    lines = []
    if refined.from_dictionary:
        translated = words(f"{word} = {english}" for word, english in refined.from_dictionary.items())
        lines.append(f"**From the dictionary · 词典翻译:** {translated}")
    if refined.dropped:
        lines.append(f"**Not understood · 未能理解:** {words(refined.dropped)} — "
                     "edit the prompt if they matter · 如有需要请修改提示词")
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


def spec_controls(spec: ModelSpec) -> list[dict[str, Any]]:
    """The settings controls for a model, as keyword arguments: its ranges, steps, choices and defaults; controls
    for what it does not take are hidden. Order: negative, resolution, frames, fps, steps, guidance, scheduler,
    cache."""
    return [
        dict(value=spec.negative_prompt or "", visible=spec.negative_prompt is not None),
        dict(choices=list(spec.size.presets), value=spec.size.default_preset),
        dict(minimum=spec.frames.min, maximum=spec.frames.max, step=spec.frames.step, value=spec.frames.default),
        dict(minimum=spec.fps.min, maximum=spec.fps.max, value=spec.fps.default),
        dict(**_slider(spec.steps), visible=spec.steps is not None),
        dict(**_slider(spec.guidance), visible=spec.guidance is not None),
        dict(choices=list(spec.schedulers), value=spec.default_scheduler, visible=bool(spec.schedulers)),
        dict(choices=list(spec.caches), value=spec.default_cache, visible=bool(spec.caches)),
    ]


def spec_updates(spec: ModelSpec | None) -> tuple[Any, ...]:
    """The controls redrawn when the model changes (left as they are for a model whose spec is not known here)."""
    if spec is None:
        return tuple(gr.update() for _ in range(8))
    return tuple(gr.update(**controls) for controls in spec_controls(spec))


def _slider(rule: Any) -> dict[str, Any]:
    return dict(minimum=rule.min, maximum=rule.max, value=rule.default) if rule is not None else {}


def build_ui(service: JobService) -> gr.Blocks:
    t = I18N
    camera_preview = next(iter(sorted(built_in())), None)
    start = spec_of(default_model())

    def refine_preview(prompt: str, refiner: str):
        from i2v.refine import make_refiner

        if not prompt or not prompt.strip():
            raise gr.Error("prompt is empty: describe the motion you want, e.g. 猫转头")
        if len(prompt) > MAX_PROMPT_CHARS:
            raise gr.Error(f"prompt is {len(prompt)} characters; the limit is {MAX_PROMPT_CHARS}")
        refined = make_refiner(refiner).refine(prompt)  # type: ignore[arg-type]
        return refined.prompt, ", ".join(refined.tags), refine_words_markdown(refined)

    def plan_preview(image_path, model, resolution, frames, fps, steps, guidance, allow_degrade):
        if not image_path:
            raise gr.Error("upload an image first")
        model = model or default_model()
        fields = dict(
            model=model, allow_degrade=bool(allow_degrade),
            **spec_fields(spec_of(model), None, resolution, frames, fps, steps, guidance, None),
        )
        try:
            return plan_markdown(service.plan(fields, Path(image_path).read_bytes(), Path(image_path).name))
        except I2VError as error:
            raise gr.Error(str(error)) from None

    def submit(image_path, prompt, refined, negative, resolution, frames, fps, steps, guidance, seed, model, scheduler, cache, refiner, allow_degrade):
        model = model or default_model()
        settings = spec_fields(spec_of(model), negative, resolution, frames, fps, steps, guidance, scheduler, cache)
        yield from run_job(image_path, prompt, refined, refiner, seed, model, allow_degrade, settings)

    def preview_camera(image_path, prompt, refined, negative, resolution, frames, fps, steps, guidance, seed, model, scheduler, cache, refiner, allow_degrade):
        """The same job on camera-preview: what the camera will do, in a second, before spending GPU minutes. The
        form's settings are carried over to what the preview takes (its presets, frame rule and rates)."""
        if camera_preview is None:
            raise gr.Error("camera-preview is not installed")
        form_spec = spec_of(model or default_model())
        settings = spec_fields(form_spec, negative, resolution, frames, fps, steps, guidance, scheduler, cache)
        everything = {**(form_spec.defaults() if form_spec else {}), **settings}
        carried = carry_over(everything, form_spec, spec_for(camera_preview))
        yield from run_job(image_path, prompt, refined, refiner, seed, camera_preview, allow_degrade, carried)

    def run_job(image_path, prompt, refined, refiner, seed, model, allow_degrade, settings: dict[str, Any]):
        if not image_path:
            raise gr.Error("upload an image first")
        edited = (refined or "").strip()
        if edited and refiner == "rules" and edited == refine_preview(prompt, refiner)[0]:
            edited = ""  # the preview as shown: let the job record the refiner, not "user"
        fields: dict[str, Any] = dict(
            prompt=edited or (prompt or "").strip(), seed=None if seed is None or int(seed) < 0 else int(seed),
            model=model, refiner="none" if edited else refiner, allow_degrade=bool(allow_degrade), **settings,
        )
        yield from follow(submit_or_explain(fields, Path(image_path).read_bytes(), Path(image_path).name))

    def submit_or_explain(fields: dict[str, Any], data: bytes, name: str) -> str:
        try:
            return service.submit(fields, data, name).id
        except I2VError as error:
            raise gr.Error(str(error)) from None

    def follow(job_id: str):
        while True:
            job = service.store.get(job_id)
            view = service.view(job)
            yield job_id, status_text(view), gr.update(), gr.update()
            if job.state not in ("queued", "running"):
                break
            time.sleep(POLL_SECONDS)
        video = job.video_path if job.state == "succeeded" else None
        yield job_id, status_text(view), video, details(view)

    def cancel(job_id: str | None):
        if job_id:
            try:
                service.cancel(job_id)
            except I2VError as error:
                gr.Warning(str(error))
        return gr.update()

    def history():
        jobs, _ = service.store.list(limit=60)
        items = [(job.thumbnail_path, f"{job.id} · {job.request.get('prompt', '')[:40]}") for job in jobs if job.state == "succeeded" and job.thumbnail_path]
        return items, [job.id for job in jobs if job.state == "succeeded" and job.thumbnail_path]

    def pick(ids: list[str], event: gr.SelectData):
        job_id = ids[event.index]
        job = service.store.get(job_id)
        view = service.view(job)
        return job_id, job.video_path, details(view), status_text(view)

    def rerun(job_id: str | None):
        if not job_id:
            raise gr.Error("pick a clip in the history first")
        job = service.store.get(job_id)
        if job is None:
            raise gr.Error("that job no longer exists")
        fields = {key: value for key, value in job.request.items() if key != "image"}
        yield from follow(submit_or_explain(fields, Path(job.image_path).read_bytes(), Path(job.image_path).name))

    def delete(job_id: str | None):
        job = service.store.get(job_id) if job_id else None
        if job is None or job.state in ("queued", "running"):
            raise gr.Error("pick a finished clip in the history first")
        service.delete(job.id)
        items, ids = history()
        return items, ids, None, None

    # Gradio's upload cache, pruned: files older than a day go, checked hourly.
    with gr.Blocks(title="i2v", delete_cache=(3600, 86400)) as demo:
        gr.Markdown(f"## {STRINGS['en']['title']} · {STRINGS['zh']['title']}")
        job_id = gr.State(None)
        history_ids = gr.State([])
        with gr.Row():
            with gr.Column():
                image = gr.Image(label="Image · 图片", type="filepath", sources=["upload", "clipboard"], elem_id="image")
                prompt = gr.Textbox(label=t("prompt"), lines=2, max_length=MAX_PROMPT_CHARS, elem_id="prompt")
                with gr.Row():
                    refiner = gr.Radio(["rules", "llm", "none"], value="rules", label=t("refiner"))
                    refine_button = gr.Button(t("refine"), elem_id="refine")
                refined = gr.Textbox(label=t("refined"), lines=2, max_length=MAX_PROMPT_CHARS, elem_id="refined")
                refine_words = gr.Markdown(elem_id="refine_words")
                tags = gr.Textbox(label=t("tags"), interactive=False, elem_id="tags")
                with gr.Accordion(t("advanced"), open=False):
                    model = gr.Dropdown(model_choices(service), value=default_model(), label=t("model"), elem_id="model")
                    initial = spec_controls(start or spec_for(camera_preview))
                    negative = gr.Textbox(label=t("negative"), lines=2, elem_id="negative", **initial[0])
                    resolution = gr.Dropdown(label=t("resolution"), elem_id="resolution", **initial[1])
                    frames = gr.Slider(label=t("frames"), elem_id="frames", **initial[2])
                    fps = gr.Slider(step=1, label=t("fps"), elem_id="fps", **initial[3])
                    steps = gr.Slider(step=1, label=t("steps"), elem_id="steps", **initial[4])
                    guidance = gr.Slider(step=0.5, label=t("guidance"), elem_id="guidance", **initial[5])
                    seed = gr.Number(value=-1, precision=0, label=t("seed"))
                    scheduler = gr.Radio(label=t("scheduler"), elem_id="scheduler", **initial[6])
                    cache = gr.Radio(label=t("cache"), elem_id="cache", **initial[7])
                    allow_degrade = gr.Checkbox(
                        value=GenerationRequest.model_fields["allow_degrade"].default, label=t("degrade"), elem_id="allow_degrade"
                    )
                    settings = [negative, resolution, frames, fps, steps, guidance, scheduler, cache]
                plan_button = gr.Button(t("plan"), size="sm", elem_id="plan")
                plan_box = gr.Markdown(elem_id="plan_box")
                with gr.Row():
                    generate_button = gr.Button(t("generate"), variant="primary", elem_id="generate")
                    preview_button = gr.Button(t("preview_camera"), elem_id="preview_camera")
                    cancel_button = gr.Button(t("cancel"), variant="stop", elem_id="cancel")
            with gr.Column():
                status = gr.Markdown(elem_id="status")
                video = gr.Video(label="Video · 视频", elem_id="video", autoplay=True, loop=True)
                info = gr.JSON(label=t("details"), elem_id="details")
        with gr.Accordion(t("history"), open=True):
            gallery = gr.Gallery(label="History · 历史记录", columns=8, height=240, object_fit="cover", elem_id="history", allow_preview=False)
            with gr.Row():
                refresh = gr.Button(t("refresh"), size="sm")
                rerun_button = gr.Button(t("rerun"), size="sm")
                delete_button = gr.Button(t("delete"), size="sm", variant="stop")

        with gr.Accordion("Workers · 工作节点", open=False):
            workers_box = gr.Markdown(elem_id="workers")
            refresh_workers = gr.Button(t("refresh"), size="sm")
        refresh_workers.click(lambda: workers_markdown(service.workers()), None, workers_box)
        demo.load(lambda: workers_markdown(service.workers()), None, workers_box)

        inputs = [image, prompt, refined, negative, resolution, frames, fps, steps, guidance, seed, model, scheduler, cache, refiner, allow_degrade]
        model.change(lambda name: spec_updates(spec_of(name)), model, settings)
        plan_button.click(plan_preview, [image, model, resolution, frames, fps, steps, guidance, allow_degrade], plan_box)
        refine_button.click(refine_preview, [prompt, refiner], [refined, tags, refine_words])
        run = generate_button.click(submit, inputs, [job_id, status, video, info], concurrency_limit=None)
        preview_run = preview_button.click(preview_camera, inputs, [job_id, status, video, info], concurrency_limit=None)
        preview_run.then(history, None, [gallery, history_ids])
        run.then(history, None, [gallery, history_ids])
        cancel_button.click(cancel, job_id, None)
        demo.load(history, None, [gallery, history_ids])
        refresh.click(history, None, [gallery, history_ids])
        gallery.select(pick, history_ids, [job_id, video, info, status])
        rerun_button.click(rerun, job_id, [job_id, status, video, info], concurrency_limit=None).then(history, None, [gallery, history_ids])
        delete_button.click(delete, job_id, [gallery, history_ids, video, info])
    return demo


def status_text(view: JobView) -> str:
    progress = view.progress
    parts = [f"**{view.state}**"]
    if view.queue_position:
        parts.append(f"queue position {view.queue_position}")
    if view.state == "running":
        parts.append(STAGE_VERBS.get(progress.stage or "", progress.stage or ""))
        if progress.total:
            parts.append(f"step {progress.step}/{progress.total}")
        if progress.eta_seconds is not None:
            parts.append(f"ETA {progress.eta_seconds:.0f} s")
    if view.error:
        parts.append(view.error)
    return " · ".join(parts) + f"  \n`{view.id}`"


def details(view: JobView) -> dict[str, Any]:
    """What ran, for the JSON panel: no server paths, no links that would need the API token."""
    return {
        "refined_prompt": view.refined_prompt,
        "settings": view.request,
        "plan": view.plan,
        "warnings": view.warnings,
        "timings": view.timings,
    }


def model_choices(service: JobService) -> list[tuple[str, str]]:
    """(label, value) pairs: the models this server offers (the only ones a job may name), each by its spec's name
    where the registry knows it ("Camera preview (instant, no model) — built in"), with where it is."""
    from i2v.models.registry import known_models

    choices = []
    for model, where in service.models().items():
        known = known_models().get(model)
        name = known[1].spec.label if known else model
        choices.append((f"{name} — {where}", model))
    return choices


def workers_markdown(workers: list[dict[str, Any]]) -> str:
    """The worker pool as a table: who holds which model on which device, and what it is doing."""
    from i2v.advisor import format_bytes

    if not workers:
        return "No worker is connected yet. 暂无工作节点。"
    rows = ["| worker | models | device | free memory | current job | heartbeat |", "|---|---|---|---|---|---|"]
    for worker in workers:
        free = worker.get("free_bytes")
        age = worker.get("heartbeat_age_seconds")
        rows.append(
            f"| {worker.get('name', '?')} | {', '.join(worker.get('models') or [])} | "
            f"{worker.get('device_name') or worker.get('device') or '?'} | {format_bytes(free) if free else '-'} | "
            f"{worker.get('current_job') or 'idle'} | {f'{age:.0f} s ago' if age is not None else '-'} |"
        )
    return "\n".join(rows)


def plan_markdown(report: dict[str, Any]) -> str:
    """The advisor's plan in a few lines: what fits, what changed, what to watch out for."""
    from i2v.advisor import format_bytes

    plan = report["plan"]
    verdict = "fits" if report["fits"] else "does NOT fit"
    lines = [
        f"**Plan / 显存规划** — {report['device']['name']}: {plan['width']}×{plan['height']}, {plan['frames']} frames, "
        f"{plan['dtype']}; peak ≈ {format_bytes(report['predicted_peak_bytes'])} of {format_bytes(report['budget_bytes'])} "
        f"({verdict}; as requested {format_bytes(report['unconstrained_peak_bytes'])}); ≈ {report['predicted_seconds']:.0f} s",
    ]
    lines += [f"- {change}" for change in report["changes"]]
    lines += [f"- ⚠ {warning}" for warning in report["warnings"]]
    return "\n".join(lines)


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
        footer_links=["api", "settings"], max_file_size=service.settings.max_upload_bytes,
    )
    if not hasattr(demo, "has_launched"):
        raise RuntimeError("this Gradio has no Blocks.has_launched: its file-path checks cannot be turned on; pin gradio 6.x")
    demo.has_launched = True
    app.add_middleware(GradioGuard, cache=Path(os.environ["GRADIO_TEMP_DIR"]), outputs=outputs)
    return app
