"""The Gradio page's layout: inputs on the left (image, motion text, refine preview, model and the essential
settings, the rest folded), the run on the right (a progress bar, the live preview while denoising, the video and
a result card with a download button, the JSON folded), and a history of thumbnails that restores a clip's form.
English and Chinese from one table (`ui_text`), picked from the browser's language (and switchable in Gradio's
settings). What each button does is in ui_actions.py; this module builds the components and wires them."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import gradio as gr
from fastapi import FastAPI

from i2v.jobs.service import JobService
from i2v.models.registry import spec_for
from i2v.request import MAX_PROMPT_CHARS, GenerationRequest, default_model
from i2v.web import ui_text
from i2v.web.security import GradioGuard
from i2v.web.ui_actions import FORM_FIELDS, Page, guarded, model_choices, refiner_choices, spec_controls, spec_of, symptom_choices
from i2v.web.ui_text import STRINGS, tr

#: The UI functions that read a whole image (check, plan, submit, camera preview, re-run) share this many
#: workers; the rest of their calls wait in Gradio's queue, which holds at most QUEUE_SIZE waiting events.
HEAVY_CONCURRENCY = 2
QUEUE_SIZE = 64
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


def build_ui(service: JobService) -> gr.Blocks:
    t = I18N
    page = Page(service)
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
                # As a file, unconverted (image_mode=None): Gradio would decode it to RGB before our header check
                # (a 164 KB 13000×13000 grayscale PNG cost 17 s and 0.8 GB); load_image checks it instead.
                image = gr.Image(label=tr("en", "image"), type="filepath", image_mode=None, sources=["upload", "clipboard"],
                                 height=300, format="png", elem_id="image")  # a clip's image put back from the history stays lossless
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
                initial = spec_controls(spec_of(default_model()) or spec_for(page.camera_preview))
                model = gr.Dropdown(model_choices(service), value=page.default_key(), label=t("model"), elem_id="model")
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

        form = dict(image=image, prompt=prompt, refined=refined, negative_prompt=negative, resolution=resolution, num_frames=frames,
                    fps=fps, steps=steps, guidance_scale=guidance, seed=seed, model=model, scheduler=scheduler, cache=cache,
                    refiner=refiner, allow_degrade=allow_degrade)
        form_inputs = [form[name] for name in FORM_FIELDS]
        results = [progress, live_preview, video, card, download, info, trouble_box, proposal_card]
        run_outputs = [job_id, generate_button, cancel_button, *results]
        restore = [image, prompt, refined, tags, refiner, model, seed, allow_degrade, *settings]
        heavy = dict(concurrency_limit=HEAVY_CONCURRENCY, concurrency_id="heavy")
        on = guarded  # every action: an unexpected failure is our one line, never an exception's text
        demo.load(on(page.on_load), lang, [model, refiner, cache, progress, gallery, history_ids, workers_box, image, video, symptom],
                  js=WITH_LANG)
        refresh_workers.click(on(page.workers), lang, workers_box, js=WITH_LANG)
        model.input(on(page.on_model), [lang, model], settings, js=WITH_LANG)
        plan_button.click(on(page.plan_preview), [lang, *form_inputs], plan_box, js=WITH_LANG, **heavy)
        refine_button.click(on(page.refine_preview), [lang, prompt, refiner, model], [refined, tags, refine_words], js=WITH_LANG)
        runs = ((generate_button, page.submit, [lang, advice, *form_inputs]), (preview_button, page.preview_camera, [lang, *form_inputs]),
                (rerun_button, page.rerun, [lang, job_id]))
        for button, action, inputs in runs:  # the submit under the limit; following the job is only polling
            run = button.click(on(action), inputs, job_id, js=WITH_LANG, **heavy)
            followed = run.success(on(page.watch), [lang, job_id], run_outputs, js=WITH_LANG, concurrency_limit=None)
            followed.then(page.job_done, None, [generate_button, cancel_button]).then(
                on(page.history), lang, [gallery, history_ids], js=WITH_LANG)
        cancel_button.click(on(page.cancel), [lang, job_id], cancel_button, js=WITH_LANG)
        refresh.click(on(page.history), lang, [gallery, history_ids], js=WITH_LANG)
        gallery.select(on(page.pick), [lang, history_ids], [job_id, *results, *restore, advice], js=WITH_LANG)
        image.upload(on(page.check_image), [lang, image, model], [advice_box, advice_card, advice_fields, advice], js=WITH_LANG, **heavy)
        image.clear(lambda: (gr.update(visible=False), "", None, None), None, [advice_box, advice_card, advice_fields, advice])
        apply_button.click(on(page.apply_advice), [lang, model, advice_fields, advice], [*settings, advice], js=WITH_LANG)
        propose_button.click(on(page.troubleshoot), [lang, job_id, symptom], [proposal_card, *restore, advice], js=WITH_LANG)
        delete_button.click(on(page.delete), [lang, job_id], [gallery, history_ids, job_id, video, card, download, progress],
                            js=WITH_LANG)
    demo.queue(max_size=QUEUE_SIZE)
    return demo


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
        show_error=False,  # an exception's text never reaches the page; our own messages (gr.Error) still do
    )
    if not hasattr(demo, "has_launched"):
        raise RuntimeError("this Gradio has no Blocks.has_launched: its file-path checks cannot be turned on; pin gradio 6.x")
    demo.has_launched = True
    gradio = next(route.app for route in app.routes if isinstance(getattr(route, "app", None), gr.routes.App))
    app.add_middleware(GradioGuard, served=app, gradio=gradio, cache=Path(os.environ["GRADIO_TEMP_DIR"]), outputs=outputs)
    return app
