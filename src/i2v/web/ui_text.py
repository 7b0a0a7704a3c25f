"""Every word the web page shows, in English and Chinese, and the pieces of the page written from a job's state
(progress bar, result card, plan, history captions, workers table) in the reader's language.

One table: labels go to Gradio's `I18n` (translated in the browser), the rest is rendered on the server in the
language the browser page reports (`lang_of`). Text that comes from the model or the advisor (the refined English
prompt, warnings, the plan's changes) is content, not UI: it is wrapped in `.i2v-content` and left as written.
"""

from __future__ import annotations

import html
import re
from typing import Any

from i2v.models.base import STAGE_VERBS, STAGES
from i2v.web.names import model_name

STRINGS: dict[str, dict[str, str]] = {
    "en": {
        # page and form
        "title": "## i2v — image to video",
        "image": "Image",
        "prompt": "Describe the motion (any language)",
        "prompt_placeholder": "e.g. the cat turns its head slowly, the camera pushes in",
        "refine": "Preview refined prompt",
        "refined": "Refined English prompt (editable; used as typed when not empty)",
        "tags": "Motion / camera tags",
        "refiner": "Prompt refiner",
        "refiner.rules": "Rules (offline)",
        "refiner.llm": "Language model",
        "refiner.none": "As typed",
        "model": "Model",
        "essentials": "Video",
        "advanced": "Advanced settings",
        "negative": "Negative prompt",
        "resolution": "Resolution",
        "frames": "Frames",
        "fps": "Playback fps",
        "steps": "Steps",
        "guidance": "Guidance scale",
        "seed": "Seed (-1 = random)",
        "scheduler": "Scheduler",
        "cache": "Step cache (faster; frames differ slightly from off)",
        "cache.off": "Off",
        "degrade": "Allow fewer frames / lower resolution if memory is short",
        "plan": "Check memory plan",
        "generate": "Generate",
        "preview_camera": "Preview camera (instant, no model)",
        "cancel": "Cancel",
        "live_preview": "Live preview",
        "video": "Video",
        "download": "Download video",
        "details": "Everything that ran (JSON)",
        "history": "History",
        "history_gallery": "Past clips",
        "refresh": "Refresh",
        "rerun": "Re-run with the same seed",
        "delete": "Delete selected",
        "workers": "Workers",
        "model.where.built in": "built in",
        "model.where.local folder": "local folder",
        "model.where.configured": "configured",
        "model.where.downloaded": "downloaded",
        "model.where.worker": "on worker {name}",
        "model.label.camera-preview": "Camera preview (instant, no model)",
        # progress
        "state.queued": "Queued",
        "state.running": "Running",
        "state.succeeded": "Done",
        "state.failed": "Failed",
        "state.cancelled": "Cancelled",
        "state.interrupted": "Interrupted",
        "stage.queued": "waiting in the queue",
        "stage.starting": "starting",
        **{f"stage.{stage}": verb for stage, verb in STAGE_VERBS.items()},  # the run's stages in the CLI's words
        "stage.done": "done",
        "queue_position": "position {n} in the queue",
        "step": "step {i}/{n}",
        "frame": "frame {i}/{n}",
        "eta": "about {s} s left",
        "cancelling": "cancelling…",
        "idle": "Upload an image, describe the motion, then Generate.",
        "preview_at": "Live preview · step {i}/{n}",
        # result card
        "result": "Result",
        "result.prompt": "Prompt",
        "result.tags": "Tags",
        "result.seed": "Seed",
        "result.video": "Video",
        "result.video_value": "{w}×{h} · {frames} frames @ {fps} fps ({seconds:.1f} s)",
        "result.model": "Model",
        "result.device": "Device",
        "result.time": "Time",
        "result.time_value": "{total:.0f} s ({parts})",
        "result.warnings": "Notes",
        "result.error": "What went wrong",
        "result.cancelled": "Cancelled",
        "result.cancelled_at": "cancelled at step {i} of {n}; nothing was written",
        "no_tags": "none",
        # plan
        "plan.head": "**Memory plan** for {model} on {device}",
        "plan.shape": "{w}×{h}, {frames} frames, {dtype}",
        "plan.peak": "peak ≈ {peak} of {budget} available",
        "plan.fits": "fits",
        "plan.not_fits": "does NOT fit",
        "plan.asked": "as requested {asked}",
        "plan.time": "≈ {seconds} s",
        "plan.cpu": "On the CPU nothing is changed to fit: the job runs as set.",
        "plan.full_size": "The chosen model is a local folder with {local} of weights, far less than {label} at its "
                          "published size (≈ {full}): these numbers are for the full-size model, not for this folder.",
        "plan.changes": "Changes to fit",
        "plan.warnings": "Watch out",
        # history
        "history.caption": "{state} · {prompt} · seed {seed} · {size} · {duration}",
        "history.empty": "No clips yet.",
        "seconds": "{s:.1f} s",
        # workers
        "workers.none": "No worker is connected yet.",
        "workers.head": "| worker | models | device | free memory | current job | heartbeat |",
        "workers.idle": "idle",
        "workers.ago": "{s} s ago",
        # errors (toasts)
        "error": "Error",
        "warning": "Warning",
        "err.no_image": "Upload an image first.",
        "err.no_prompt": "The prompt is empty: describe the motion you want, e.g. 猫转头.",
        "err.prompt_long": "The prompt is {n} characters; the limit is {limit}.",
        "err.pick": "Pick a clip in the history first.",
        "err.pick_finished": "Pick a finished clip in the history first.",
        "err.gone": "That job no longer exists.",
        "err.no_camera": "The camera preview is not installed.",
        "err.invalid_input": "A setting is not valid: {message}",
        "err.invalid_image": "This image cannot be used: {message}",
        "err.server": "The server could not handle this request: reload the page and try again (the server's log has the details).",
        "words.dictionary": "From the dictionary:",
        "words.dropped": "Not understood:",
        "words.edit": "edit the prompt if they matter",
        # the strategy advisor (issue 16)
        "advice.head": "Image check for {model}: suitability {score}/5",
        "advice.preset": "Recommended preset: {preset}",
        "advice.setting": "{field} = {value}",
        "advice.apply": "Apply recommended settings",
        "advice.applied": "Recommended settings applied.",
        "preset.fast": "fast", "preset.standard": "standard", "preset.quality": "quality",
        "field.resolution": "resolution", "field.num_frames": "frames", "field.steps": "steps", "field.fps": "fps",
        "field.guidance_scale": "guidance", "field.scheduler": "scheduler", "field.motion_fps": "motion fps",
        "field.prompt": "prompt", "field.negative_prompt": "negative prompt", "field.seed": "seed", "field.cache": "step cache",
        "field.size": "size", "field.width": "width", "field.height": "height",
        "trouble": "What went wrong?",
        "trouble.symptom": "Symptom",
        "trouble.propose": "Propose the next run",
        "trouble.head": "Proposed for “{label}”: the form now holds the next run; press Generate to try it.",
        "trouble.none": "Nothing to change for this symptom.",
        "trouble.seed_same": "same seed", "trouble.seed_new": "new seed",
        "symptom.stiff": "motion too stiff or jerky", "symptom.flicker": "flicker or jitter",
        "symptom.prompt_ignored": "the prompt was ignored", "symptom.wrong_camera": "the camera moved wrongly",
        "symptom.too_slow": "it took too long", "symptom.subject_changed": "the subject changed or morphed",
        "symptom.out_of_memory": "it ran out of memory", "symptom.too_little_motion": "almost nothing moves",
        "symptom.blurry": "the video is soft or blurry",
        # Gradio's own words its Chinese table lacks (the screen-reader "done" line)
        "common.complete": "Complete",
    },
    "zh": {
        "title": "## i2v — 图片生成视频",
        "image": "图片",
        "prompt": "描述想要的动作（中文或英文）",
        "prompt_placeholder": "例如：猫慢慢转头，镜头推近",
        "refine": "预览优化后的提示词",
        "refined": "优化后的英文提示词（可编辑；非空时按原样使用）",
        "tags": "运动 / 镜头标签",
        "refiner": "提示词优化",
        "refiner.rules": "规则（离线）",
        "refiner.llm": "大语言模型",
        "refiner.none": "原样使用",
        "model": "模型",
        "essentials": "视频",
        "advanced": "高级设置",
        "negative": "反向提示词",
        "resolution": "分辨率",
        "frames": "帧数",
        "fps": "播放帧率",
        "steps": "步数",
        "guidance": "引导系数",
        "seed": "随机种子（-1 为随机）",
        "scheduler": "采样器",
        "cache": "步骤缓存（更快；画面与关闭时略有不同）",
        "cache.off": "关闭",
        "degrade": "显存不足时允许减少帧数或降低分辨率",
        "plan": "检查显存规划",
        "generate": "生成",
        "preview_camera": "预览镜头运动（即时，无需模型）",
        "cancel": "取消",
        "live_preview": "实时预览",
        "video": "视频",
        "download": "下载视频",
        "details": "运行的全部参数（JSON）",
        "history": "历史记录",
        "history_gallery": "以往的视频",
        "refresh": "刷新",
        "rerun": "用相同种子重新生成",
        "delete": "删除所选",
        "workers": "工作节点",
        "model.where.built in": "内置",
        "model.where.local folder": "本地文件夹",
        "model.where.configured": "已配置",
        "model.where.downloaded": "已下载",
        "model.where.worker": "位于工作节点 {name}",
        "model.label.camera-preview": "镜头预览（即时，无需模型）",
        "state.queued": "排队中",
        "state.running": "运行中",
        "state.succeeded": "完成",
        "state.failed": "失败",
        "state.cancelled": "已取消",
        "state.interrupted": "已中断",
        "stage.queued": "排队等待",
        "stage.starting": "正在启动",
        "stage.load": "加载模型",
        "stage.refine": "优化提示词",
        "stage.encode": "编码提示词和图片",
        "stage.denoise": "去噪",
        "stage.render": "渲染帧",
        "stage.decode": "解码帧",
        "stage.write": "写入视频",
        "stage.done": "完成",
        "queue_position": "队列第 {n} 位",
        "step": "第 {i}/{n} 步",
        "frame": "第 {i}/{n} 帧",
        "eta": "约剩 {s} 秒",
        "cancelling": "正在取消…",
        "idle": "上传图片、描述动作，然后点击“生成”。",
        "preview_at": "实时预览 · 第 {i}/{n} 步",
        "result": "结果",
        "result.prompt": "提示词",
        "result.tags": "标签",
        "result.seed": "种子",
        "result.video": "视频",
        "result.video_value": "{w}×{h} · {frames} 帧 @ {fps} fps（{seconds:.1f} 秒）",
        "result.model": "模型",
        "result.device": "设备",
        "result.time": "用时",
        "result.time_value": "{total:.0f} 秒（{parts}）",
        "result.warnings": "提示",
        "result.error": "出错原因",
        "result.cancelled": "已取消",
        "result.cancelled_at": "已在第 {i}/{n} 步取消，未写入任何文件",
        "no_tags": "无",
        "plan.head": "**显存规划**：{model}，设备 {device}",
        "plan.shape": "{w}×{h}，{frames} 帧，{dtype}",
        "plan.peak": "峰值约 {peak}，可用 {budget}",
        "plan.fits": "可以运行",
        "plan.not_fits": "显存不足",
        "plan.asked": "按原设置需 {asked}",
        "plan.time": "约 {seconds} 秒",
        "plan.cpu": "在 CPU 上不会为适配而改动设置：按所设参数运行。",
        "plan.full_size": "所选模型是本地文件夹，权重只有 {local}，远小于完整的 {label}（约 {full}）："
                          "以上数字是完整模型的，不是这个文件夹的。",
        "plan.changes": "为适配所做的改动",
        "plan.warnings": "注意",
        "history.caption": "{state} · {prompt} · 种子 {seed} · {size} · {duration}",
        "history.empty": "还没有视频。",
        "seconds": "{s:.1f} 秒",
        "workers.none": "暂无工作节点。",
        "workers.head": "| 节点 | 模型 | 设备 | 可用显存 | 当前任务 | 心跳 |",
        "workers.idle": "空闲",
        "workers.ago": "{s} 秒前",
        "error": "错误",
        "warning": "注意",
        "err.no_image": "请先上传图片。",
        "err.no_prompt": "提示词为空：请描述想要的动作，例如“猫转头”。",
        "err.prompt_long": "提示词有 {n} 个字符，上限为 {limit}。",
        "err.pick": "请先在历史记录中选择一个视频。",
        "err.pick_finished": "请先在历史记录中选择一个已结束的视频。",
        "err.gone": "该任务已不存在。",
        "err.no_camera": "未安装镜头预览。",
        "err.invalid_input": "设置无效：{message}",
        "err.invalid_image": "这张图片无法使用：{message}",
        "err.server": "服务器无法处理这个请求：请刷新页面后重试（详情见服务器日志）。",
        "words.dictionary": "词典翻译：",
        "words.dropped": "未能理解：",
        "words.edit": "如有需要请修改提示词",
        "common.complete": "完成",
        "advice.head": "图片检查（{model}）：适合度 {score}/5",
        "advice.preset": "推荐预设：{preset}",
        "advice.setting": "{field} = {value}",
        "advice.apply": "应用推荐设置",
        "advice.applied": "已应用推荐设置。",
        "preset.fast": "快速", "preset.standard": "标准", "preset.quality": "高质量",
        "field.resolution": "分辨率", "field.num_frames": "帧数", "field.steps": "步数", "field.fps": "播放帧率",
        "field.guidance_scale": "引导系数", "field.scheduler": "采样器", "field.motion_fps": "运动帧率",
        "field.prompt": "提示词", "field.negative_prompt": "反向提示词", "field.seed": "种子", "field.cache": "步骤缓存",
        "field.size": "尺寸", "field.width": "宽", "field.height": "高",
        "trouble": "哪里不对？",
        "trouble.symptom": "问题",
        "trouble.propose": "给出下一次的设置",
        "trouble.head": "针对“{label}”：表单已填好下一次的设置，点击“生成”即可尝试。",
        "trouble.none": "这个问题无需改动设置。",
        "trouble.seed_same": "相同种子", "trouble.seed_new": "新种子",
        "symptom.stiff": "动作僵硬或卡顿", "symptom.flicker": "闪烁或抖动",
        "symptom.prompt_ignored": "提示词被忽略", "symptom.wrong_camera": "镜头运动不对",
        "symptom.too_slow": "耗时太长", "symptom.subject_changed": "主体变了或变形",
        "symptom.out_of_memory": "显存不足", "symptom.too_little_motion": "几乎不动",
        "symptom.blurry": "视频模糊",
    },
}
#: Stages in the order a run goes through them, with the share of the bar each ends at (denoising is the long one).
BAR_END = {"queued": 0, "starting": 2, "load": 10, "refine": 12, "encode": 15, "denoise": 92, "render": 92, "decode": 97,
           "write": 99, "done": 100}
assert set(STAGES) <= set(BAR_END)


def lang_of(code: str | None) -> str:
    """The page's language from the browser's locale tag ("zh-CN", "en-US", …): Chinese or English."""
    return "zh" if (code or "").lower().startswith("zh") else "en"


def tr(lang: str, key: str, **values: Any) -> str:
    text = STRINGS.get(lang, STRINGS["en"]).get(key) or STRINGS["en"][key]
    return text.format(**values) if values else text


def content(text: str, *, block: bool = False) -> str:
    """Text from the model or the advisor (not UI words), escaped and marked as content."""
    tag = "div" if block else "span"
    return f'<{tag} class="i2v-content" lang="en">{html.escape(text)}</{tag}>'


def progress_html(lang: str, view: Any, cancelling: bool = False) -> str:
    """A progress bar for a job: state, stage, step i/N, ETA, and how far along the whole run is."""
    progress = view.progress
    stage = progress.stage or view.state
    percent = progress_percent(view)
    words = [tr(lang, f"state.{view.state}")] if f"state.{view.state}" in STRINGS["en"] else [view.state]
    if view.state == "queued" and view.queue_position:
        words.append(tr(lang, "queue_position", n=view.queue_position))
    if view.state == "running":
        if f"stage.{stage}" in STRINGS["en"]:
            words.append(tr(lang, f"stage.{stage}"))
        if stage in ("denoise", "render") and progress.total:
            words.append(tr(lang, "step" if stage == "denoise" else "frame", i=progress.step, n=progress.total))
        if progress.eta_seconds is not None and stage in ("denoise", "render"):
            words.append(tr(lang, "eta", s=f"{progress.eta_seconds:.0f}"))
        if cancelling:
            words.append(tr(lang, "cancelling"))
    kind = {"succeeded": "done", "failed": "failed", "cancelled": "failed", "interrupted": "failed"}.get(view.state, "running")
    if view.state == "cancelled":  # the user's own choice, not an error: in the page's words
        error = f'<div class="i2v-cancelled">{html.escape(cancelled_text(lang, view))}</div>'
    else:
        error = f'<div class="i2v-error">{content(view.error)}</div>' if view.error else ""
    return (
        f'<div class="i2v-progress i2v-{kind}" data-state="{html.escape(view.state)}" data-stage="{html.escape(stage)}" '
        f'data-percent="{percent}"><div class="i2v-bar"><div class="i2v-fill" style="width:{percent}%"></div></div>'
        f'<div class="i2v-line"><b>{percent}%</b> · {html.escape(" · ".join(words))}</div>{error}</div>'
    )


def cancelled_text(lang: str, view: Any) -> str:
    """A cancelled job in the page's language: the step it stopped at (from the runner's message) when known."""
    found = re.search(r"cancelled after step (\d+) of (\d+)", view.error or "")
    if found:
        return tr(lang, "result.cancelled_at", i=found[1], n=found[2])
    return tr(lang, "state.cancelled")


def idle_html(lang: str) -> str:
    return f'<div class="i2v-progress i2v-idle" data-state="idle"><div class="i2v-line">{html.escape(tr(lang, "idle"))}</div></div>'


def progress_percent(view: Any) -> int:
    """The whole run as 0-100: each stage fills its share of the bar, denoising by its steps."""
    if view.state == "succeeded":
        return 100
    stage = view.progress.stage or view.state
    if stage not in BAR_END:
        return 0
    order = list(BAR_END)
    start = BAR_END[order[order.index(stage) - 1]] if order.index(stage) else 0
    if stage in ("denoise", "render"):
        start = BAR_END["encode"]
        if view.progress.total:
            return int(start + (BAR_END[stage] - start) * min(view.progress.step, view.progress.total) / view.progress.total)
    return start


def result_markdown(lang: str, view: Any, metadata: dict[str, Any] | None, model_label: str) -> str:
    """The result card under the video: what was made, from what, where and how long it took. No server paths."""
    rows: list[tuple[str, str]] = []
    refined = view.refined_prompt or {}
    if refined.get("prompt"):
        rows.append((tr(lang, "result.prompt"), content(refined["prompt"])))
    tags = refined.get("tags") or []
    rows.append((tr(lang, "result.tags"), content(", ".join(tags)) if tags else html.escape(tr(lang, "no_tags"))))
    metadata = metadata or {}
    seed = metadata.get("seed", (view.request or {}).get("seed"))
    if seed is not None:
        rows.append((tr(lang, "result.seed"), f"<code>{seed}</code>"))
    video = metadata.get("video") or {}
    if video.get("width"):
        rows.append((tr(lang, "result.video"), html.escape(tr(
            lang, "result.video_value", w=video["width"], h=video["height"], frames=video["num_frames"], fps=video["fps"],
            seconds=video["num_frames"] / max(video["fps"], 1),
        ))))
    rows.append((tr(lang, "result.model"), html.escape(model_label)))
    runtime = (view.plan or {}) if isinstance(view.plan, dict) else {}
    if runtime.get("device"):
        device = str(runtime["device"]).upper() + (f" · {runtime['dtype']}" if runtime.get("dtype") else "")
        rows.append((tr(lang, "result.device"), html.escape(device)))
    timings = view.timings or {}
    if timings:
        parts = ", ".join(f"{tr(lang, f'stage.{name}') if f'stage.{name}' in STRINGS['en'] else name} {seconds:.1f}"
                          for name, seconds in timings.items())
        rows.append((tr(lang, "result.time"), html.escape(tr(lang, "result.time_value", total=sum(timings.values()), parts=parts))))
    if view.state == "cancelled":
        rows.append((tr(lang, "result.cancelled"), html.escape(cancelled_text(lang, view))))
    elif view.error:
        rows.append((tr(lang, "result.error"), content(view.error)))
    if view.warnings:
        rows.append((tr(lang, "result.warnings"), "<br>".join(content(warning) for warning in view.warnings)))
    state = tr(lang, f"state.{view.state}") if f"state.{view.state}" in STRINGS["en"] else view.state
    body = "".join(f"<tr><th>{html.escape(name)}</th><td>{value}</td></tr>" for name, value in rows)
    return f'<div class="i2v-card" data-state="{html.escape(view.state)}"><h3>{html.escape(tr(lang, "result"))} · {html.escape(state)}</h3><table>{body}</table></div>'


def history_caption(lang: str, job: Any, metadata: dict[str, Any] | None) -> str:
    """A short caption under a thumbnail: state, prompt, seed, size, duration."""
    request = job.request or {}
    video = (metadata or {}).get("video") or {}
    prompt = (request.get("prompt") or "").strip()
    prompt = prompt if len(prompt) <= 28 else prompt[:27] + "…"
    seed = (metadata or {}).get("seed", request.get("seed"))
    size = f"{video['width']}×{video['height']}" if video.get("width") else (request.get("resolution") or "–")
    frames = video.get("num_frames") or request.get("num_frames")
    fps = video.get("fps") or request.get("fps")
    duration = tr(lang, "seconds", s=frames / fps) if frames and fps else "–"
    state = tr(lang, f"state.{job.state}") if f"state.{job.state}" in STRINGS["en"] else job.state
    return tr(lang, "history.caption", state=state, prompt=prompt or "–", seed=seed if seed is not None else "–",
              size=size, duration=duration)


def workers_markdown(lang: str, workers: list[dict[str, Any]], format_bytes) -> str:
    """The worker pool as a table: who holds which model (by name, never a folder's path) on which device, and
    what it is doing."""
    if not workers:
        return tr(lang, "workers.none")
    rows = [tr(lang, "workers.head"), "|---|---|---|---|---|---|"]
    for worker in workers:
        free = worker.get("free_bytes")
        age = worker.get("heartbeat_age_seconds")
        rows.append(
            f"| {worker.get('name', '?')} | {', '.join(model_name(model) for model in worker.get('models') or [])} | "
            f"{worker.get('device_name') or worker.get('device') or '?'} | {format_bytes(free) if free else '-'} | "
            f"{worker.get('current_job') or tr(lang, 'workers.idle')} | "
            f"{tr(lang, 'workers.ago', s=f'{age:.0f}') if age is not None else '-'} |"
        )
    return "\n".join(rows)


def plan_markdown(lang: str, report: dict[str, Any], model_label: str, format_bytes, smaller_than_full: tuple[int, int] | None) -> str:
    """The advisor's plan in a few lines, saying which model and which device it planned for."""
    plan = report["plan"]
    device = report["device"]
    device_name = device["name"] + (f" ({format_bytes(device['total_bytes'])})" if device.get("total_bytes") else "")
    lines = [
        tr(lang, "plan.head", model=model_label, device=device_name) + ": "
        + tr(lang, "plan.shape", w=plan["width"], h=plan["height"], frames=plan["frames"], dtype=plan["dtype"]) + "; "
        + tr(lang, "plan.peak", peak=format_bytes(report["predicted_peak_bytes"]), budget=format_bytes(report["budget_bytes"]))
        + f" (**{tr(lang, 'plan.fits' if report['fits'] else 'plan.not_fits')}**); "
        + tr(lang, "plan.asked", asked=format_bytes(report["unconstrained_peak_bytes"])) + "; "
        + tr(lang, "plan.time", seconds=f"{report['predicted_seconds']:.0f}"),
    ]
    if smaller_than_full:
        local, full = smaller_than_full
        lines.append("\n> " + tr(lang, "plan.full_size", local=format_bytes(local), label=model_label, full=format_bytes(full)))
    if device["kind"] == "cpu":
        lines.append("\n" + tr(lang, "plan.cpu"))
    for heading, items in (("plan.changes", report["changes"]), ("plan.warnings", report["warnings"])):
        if items:
            lines.append(f"\n**{tr(lang, heading)}**\n")
            lines += [f"- {content(item)}" for item in items]
    return "\n".join(lines)


def toast_css() -> str:
    """Gradio 6.31 heads a toast with its type ("Error", "Warning") whatever title it is given: in another
    language the heading is drawn from the table instead."""
    rules = []
    for lang, strings in STRINGS.items():
        if lang == "en":
            continue
        for kind in ("error", "warning"):
            rules.append(f'html[lang^="{lang}"] .toast-title.{kind} {{ font-size: 0; }} '
                         f'html[lang^="{lang}"] .toast-title.{kind}::after {{ content: "{strings[kind]}"; font-size: var(--text-md, 14px); }}')
    return "\n".join(rules)


def field_name(lang: str, field: str) -> str:
    return tr(lang, f"field.{field}") if f"field.{field}" in STRINGS["en"] else field


def advice_html(lang: str, assessment: Any, recommendation: Any) -> str:
    """The image check after upload: the score, what to watch out for, the recommended preset and each setting with
    its reason (the advisor's own words, as content)."""
    items = [f"<li>{content(warning.message)}</li>" for warning in assessment.warnings]
    settings = [
        f"<li><b>{html.escape(tr(lang, 'advice.setting', field=field_name(lang, s.field), value=s.value))}</b> — {content(s.reason)}</li>"
        for s in recommendation.settings
    ]
    preset = tr(lang, f"preset.{recommendation.preset}") if f"preset.{recommendation.preset}" in STRINGS["en"] else recommendation.preset
    reason = recommendation.preset_reason.removeprefix(f"{recommendation.preset}: ")
    return (
        f'<div class="i2v-advice"><b>{html.escape(tr(lang, "advice.head", model=assessment.model, score=assessment.suitability))}</b>'
        + (f"<ul>{''.join(items)}</ul>" if items else "")
        + f"<div>{html.escape(tr(lang, 'advice.preset', preset=preset))} — {content(reason)}</div>"
        + f"<ul>{''.join(settings)}</ul></div>"
    )


def proposal_html(lang: str, proposal: Any) -> str:
    """A troubleshooting proposal: each change with its reason, the seed choice and what could not be changed."""
    label = tr(lang, f"symptom.{proposal.symptom}") if f"symptom.{proposal.symptom}" in STRINGS["en"] else proposal.label
    changes = [
        f"<li><b>{html.escape(field_name(lang, c.field))}</b>: {content(str(c.before))} → {content(str(c.after))} — {content(c.reason)}</li>"
        for c in proposal.changes
    ]
    notes = [f"<li>{content(note)}</li>" for note in proposal.notes]
    seed = tr(lang, f"trouble.seed_{proposal.seed}")
    body = f"<ul>{''.join(changes + notes)}</ul>" if changes or notes else f"<p>{html.escape(tr(lang, 'trouble.none'))}</p>"
    return (f'<div class="i2v-proposal" data-symptom="{html.escape(proposal.symptom)}"><b>{html.escape(tr(lang, "trouble.head", label=label))}</b>'
            f" ({html.escape(seed)}){body}</div>")
