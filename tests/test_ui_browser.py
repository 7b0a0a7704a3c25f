"""The web UI end to end in headless Chromium (Debian's package) driven by Playwright, against one real server
(`i2v serve` offering the tiny I2VGen-XL and the tiny Wan 2.2) and one browser for the module.

Set I2V_UI_SCREENSHOTS=DIR to keep the screenshots (docs/ui.png and docs/ui-zh.png are taken this way)."""

import os
import re
import shutil
from pathlib import Path

import pytest
from helpers import ServerProcess, make_photo

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM) and not os.environ.get("CI"),
    reason="Debian's chromium is not installed (apt-get install chromium); .ci/run installs it",
)
BROWSER_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]
#: ASCII words a Chinese page may show: names, units and the model's own values (schedulers, dtypes, presets).
ALLOWED_WORDS = {
    "i2v", "I2VGen-XL", "Wan", "TI2V-5B", "tiny", "wan-tiny", "fps", "px", "GiB", "MiB", "KiB", "MB", "GB", "CPU", "GPU",
    "bf16", "fp16", "fp32", "ddim", "dpmpp", "unipc", "API", "Gradio", "JSON",
}
#: Every visible text node outside content (the model's and the advisor's own words, marked .i2v-content), form
#: fields and the folded JSON, as ASCII words (a unit after a number, as in 256p, is not a word).
VISIBLE_WORDS = """() => {
  const words = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const element = walker.currentNode.parentElement;
    if (!element || element.closest('.i2v-content, script, style, textarea, #details')) continue;
    const style = getComputedStyle(element);
    if (!element.getClientRects().length || style.visibility === 'hidden' || parseFloat(style.fontSize) === 0) continue;
    for (const match of walker.currentNode.textContent.matchAll(/(?<![0-9])[A-Za-z][A-Za-z0-9_-]*/g)) words.push(match[0]);
  }
  return words;
}"""


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_model, wan_tiny_model):
    process = ServerProcess(tmp_path_factory.mktemp("ui-home"), tiny_model, env={"I2V_MODELS": str(wan_tiny_model)}).start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        yield browser
        browser.close()


def server_log(server) -> str:
    server.log.flush()
    return (Path(server.home) / "server-test.log").read_text(errors="replace")


def open_page(server, browser, locale):
    page = browser.new_page(locale=locale, viewport={"width": 1400, "height": 1000})
    page.goto(server.url + "/", wait_until="load")
    page.wait_for_selector("#prompt textarea", timeout=60_000)
    page.wait_for_function("document.querySelector('#progress .i2v-progress')", timeout=30_000)  # on_load has run
    return page


def set_number(page, field, value):
    box = page.locator(f"{field} input[type=number]")
    box.fill(str(value))
    box.press("Enter")


def pick_option(page, field, name):
    page.locator(f"{field} input").click()
    page.get_by_role("option", name=name).click()


def shoot(page, name):
    folder = os.environ.get("I2V_UI_SCREENSHOTS")
    if folder:
        page.screenshot(path=str(Path(folder) / name), full_page=True)


def recommended(model, image) -> dict:
    from i2v.advisor.assess import assess
    from i2v.advisor.device import probe_device
    from i2v.advisor.recommend import advise
    from i2v.models.registry import spec_for

    return advise(image, None, model=str(model), assessment=assess(image, spec=spec_for(str(model))), device=probe_device()).request_fields()


def test_a_chinese_user_goes_from_upload_to_result_and_back_from_history(server, browser, tmp_path, tiny_model):
    """upload → refine → plan → generate (live preview mid-run) → result card → history restores the form, with
    every UI word in Chinese and no traceback in the server's log."""
    from playwright.sync_api import expect

    photo = tmp_path / "cat.png"
    make_photo(300, 200).save(photo)
    page = open_page(server, browser, "zh-CN")
    expect(page.locator("#title")).to_have_text("i2v — 图片生成视频")  # one language at a time
    expect(page.locator("#cancel")).to_be_disabled()  # nothing of this page is running

    page.click("#generate")  # a user's mistake: a toast in Chinese, nothing in the server's log
    toast = page.locator(".toast-body").filter(has_text="请先上传图片。")
    expect(toast).to_be_visible(timeout=10_000)
    # Its heading too, while it shows: Gradio writes "Error" whatever the title; the page's CSS draws "错误" over it.
    heading = toast.locator(".toast-title")
    assert heading.evaluate("e => getComputedStyle(e, '::after').content") == '"错误"'
    assert heading.evaluate("e => parseFloat(getComputedStyle(e).fontSize)") == 0
    untranslated = set(page.evaluate(VISIBLE_WORDS)) - ALLOWED_WORDS
    assert not untranslated, f"English in the Chinese toast: {sorted(untranslated)}"

    # Generate waits while the image uploads.
    page.evaluate("""() => { window.heldDuringUpload = false; const button = document.getElementById('generate');
        new MutationObserver(() => { if (button.disabled) window.heldDuringUpload = true; })
            .observe(button, {attributes: true}); }""")
    page.set_input_files("#image input[type=file]", str(photo))
    page.wait_for_selector("#image img", timeout=30_000)
    expect(page.locator("#generate")).to_be_enabled()
    assert page.evaluate("window.heldDuringUpload")
    # The advisor's image check, and its recommended settings applied to the form.
    expect(page.locator("#advice_card")).to_contain_text("适合度", timeout=30_000)
    page.click("#apply_advice")
    expect(page.locator("#frames input[type=number]")).to_have_value(str(recommended(tiny_model, make_photo(300, 200))["num_frames"]))

    # Words from the dictionary and words left out are shown beside the refined prompt, so the user can edit.
    page.fill("#prompt textarea", "猫在隧道里转头，咕噜噜")
    page.click("#refine")
    page.wait_for_function("document.querySelector('#refine_words').innerText.includes('咕噜噜')", timeout=30_000)
    words = page.inner_text("#refine_words")
    assert "隧道 = tunnel" in words and "如有需要请修改提示词" in words, words
    assert page.input_value("#refined textarea") == "A cat turning its head in the tunnel."

    pick_option(page, "#resolution", "256p")
    set_number(page, "#frames", 8)
    set_number(page, "#seed", 7)
    page.click("#advanced")
    set_number(page, "#steps", 10)
    page.click("#plan")
    page.wait_for_function("document.querySelector('#plan_box').innerText.includes('显存规划')", timeout=60_000)
    plan = page.inner_text("#plan_box")
    # Which model and device it planned for, and that the tiny folder is not what the numbers describe.
    assert "I2VGen-XL" in plan and "CPU" in plan and "320×192" in plan and "不是这个文件夹的" in plan, plan

    page.click("#generate")
    page.wait_for_selector("#live_preview img", timeout=60_000)  # the clip as it forms, while denoising
    expect(page.locator("#cancel")).to_be_enabled()
    progress = page.inner_text("#progress")
    assert re.search(r"\d+% · 运行中 · 去噪 · 第 \d+/10 步", progress), progress
    assert page.locator("#live_preview img").get_attribute("src").split("?")[0].endswith(".webp")
    shoot(page, "ui-zh-running.png")

    page.wait_for_selector("#result .i2v-card[data-state=succeeded]", timeout=120_000)
    expect(page.locator("#live_preview")).to_be_hidden()
    expect(page.locator("#cancel")).to_be_disabled()
    expect(page.locator("#download")).to_be_visible()
    source = page.locator("#video video").get_attribute("src")
    assert source and source.endswith(".mp4") and "outputs" not in source  # served from Gradio's cache: no server path
    card = page.inner_text("#result")
    for expected in ("A cat turning its head in the tunnel.", "种子\t7", "320×192 · 8 帧 @ 16 fps", "I2VGen-XL · tiny", "CPU"):
        assert expected in card, card
    assert page.inner_text("#progress").startswith("100%")
    # What went wrong? The advisor's next run for a symptom, put into the form.
    page.click("#propose")
    expect(page.locator("#proposal .i2v-proposal")).to_be_visible(timeout=30_000)
    assert "表单已填好下一次的设置" in page.inner_text("#proposal")
    untranslated = set(page.evaluate(VISIBLE_WORDS)) - ALLOWED_WORDS
    assert not untranslated, f"English left on the Chinese page: {sorted(untranslated)}"
    shoot(page, "ui-zh.png")

    # A fresh page: the history shows the clip with its caption; a click puts it back, form and all.
    page.reload(wait_until="load")
    page.wait_for_selector("#history img", timeout=60_000)
    caption = page.locator("#history .caption-label").first.inner_text()
    assert "完成" in caption and "种子 7" in caption and "320×192" in caption and "0.5 秒" in caption, caption
    page.locator("#history img").first.click()
    page.wait_for_selector("#result .i2v-card[data-state=succeeded]", timeout=30_000)
    expect(page.locator("#prompt textarea")).to_have_value("猫在隧道里转头，咕噜噜")
    expect(page.locator("#frames input[type=number]")).to_have_value("8")
    expect(page.locator("#seed input")).to_have_value("7")
    expect(page.locator("#resolution input")).to_have_value("256p")
    page.click("#advanced")
    expect(page.locator("#steps input[type=number]")).to_have_value("10")
    expect(page.locator("#image img")).to_be_visible()
    page.close()
    log = server_log(server)
    assert "Traceback" not in log and "too many output values" not in log, log[-3000:]


def test_an_english_user_switches_to_wan_makes_mistakes_and_cancels(server, browser, tmp_path, wan_tiny_model):
    """Wan 2.2's own limits on the page (frames 4k+1 up to 121); a frame count off its rule is refused in a toast
    naming the rule, not with a traceback; a cancelled job is shown as cancelled in the history."""
    from playwright.sync_api import expect

    from i2v.models.wan22.spec import SPEC as WAN

    photo = tmp_path / "dog.png"
    make_photo(320, 224, seed=1).save(photo)
    page = open_page(server, browser, "en-US")
    expect(page.locator("#title")).to_have_text("i2v — image to video")
    page.set_input_files("#image input[type=file]", str(photo))
    page.wait_for_selector("#image img", timeout=30_000)
    page.fill("#prompt textarea", "the dog wags its tail")

    pick_option(page, "#model", f"{WAN.label} · {wan_tiny_model.name} — local folder")
    frames = page.locator("#frames input[type=range]")
    expect(frames).to_have_attribute("min", str(WAN.frames.min))
    expect(frames).to_have_attribute("max", str(WAN.frames.max))
    expect(frames).to_have_attribute("step", str(WAN.frames.step))
    expect(frames).to_have_value(str(WAN.frames.default))
    expect(page.locator("#resolution input")).to_have_value(WAN.size.default_preset)
    set_number(page, "#frames", 10)  # off the 4k+1 rule
    page.click("#plan")
    toast = page.locator(".toast-body").filter(has_text="4k+1")
    expect(toast).to_be_visible(timeout=30_000)
    assert "A setting is not valid" in toast.inner_text()

    # Back to the tiny I2VGen-XL: a run long enough to cancel, shown as cancelled.
    pick_option(page, "#model", "I2VGen-XL · tiny — local folder")
    pick_option(page, "#resolution", "256p")
    set_number(page, "#frames", 8)
    page.click("#advanced")
    set_number(page, "#steps", 60)
    page.click("#generate")
    page.wait_for_function("document.querySelector('#progress .i2v-progress').dataset.stage === 'denoise'", timeout=60_000)
    page.click("#cancel")
    page.wait_for_selector("#result .i2v-card[data-state=cancelled]", timeout=60_000)
    card = page.inner_text("#result")  # a user's cancel, not an error; nothing to troubleshoot
    assert re.search(r"cancelled at step \d+ of 60", card) and "What went wrong" not in card, card
    expect(page.locator("#troubleshoot")).to_be_hidden()
    expect(page.locator("#cancel")).to_be_disabled()
    expect(page.locator("#generate")).to_be_enabled()
    expect(page.locator("#download")).to_be_hidden()
    page.wait_for_function(
        "[...document.querySelectorAll('#history .caption-label')].some(c => c.innerText.startsWith('Cancelled'))", timeout=30_000
    )
    # A history item can be deleted: picked, then gone from the grid.
    before = page.locator("#history img").count()
    page.locator("#history .caption-label").filter(has_text="Cancelled").first.click()
    page.wait_for_selector("#result .i2v-card[data-state=cancelled]", timeout=30_000)
    page.click("#delete")
    expect(page.locator("#history img")).to_have_count(before - 1, timeout=30_000)
    page.close()
    log = server_log(server)
    assert "Traceback" not in log and "too many output values" not in log, log[-3000:]


def test_settings_follow_the_chosen_models_spec(server, browser, tiny_model):
    """Each model's own limits on the page: the frames range, and only the controls the model takes."""
    from playwright.sync_api import expect

    from i2v.models.camera_preview.spec import SPEC as CAMERA
    from i2v.models.i2vgenxl.spec import SPEC as I2VGENXL

    def expect_slider(element_id, rule):
        box = page.locator(f"#{element_id} input[type=range]")
        expect(box).to_have_attribute("min", f"{rule.min:g}")
        expect(box).to_have_attribute("max", f"{rule.max:g}")
        expect(box).to_have_value(f"{rule.default:g}")
        if element_id == "frames":
            expect(box).to_have_attribute("step", str(rule.step))

    def expect_i2vgenxl():
        expect_slider("frames", I2VGENXL.frames)
        expect_slider("steps", I2VGENXL.steps)
        expect_slider("guidance", I2VGENXL.guidance)
        for field in ("#steps", "#guidance", "#scheduler", "#negative"):
            expect(page.locator(field)).to_be_visible()
        expect(page.locator("#scheduler input[type=radio]")).to_have_count(len(I2VGENXL.schedulers))
        assert [radio.get_attribute("value") for radio in page.locator("#scheduler input[type=radio]").all()] == list(I2VGENXL.schedulers)
        expect(page.locator("#scheduler input[type=radio]:checked")).to_have_value(I2VGENXL.default_scheduler)
        expect(page.locator("#negative textarea")).to_have_value(I2VGENXL.negative_prompt)

    page = open_page(server, browser, "en-US")
    page.click("#advanced")
    page.wait_for_selector("#frames input[type=range]", timeout=30_000)
    # The default model, the tiny I2VGen-XL folder, by its spec's label and the folder's name: no server path.
    assert page.input_value("#model input") == f"I2VGen-XL · {tiny_model.name} — local folder"
    assert str(tiny_model) not in page.content()
    expect_i2vgenxl()

    # The picker names a built-in model by its spec's label, as the issue asks: "Camera preview (instant, no model)".
    pick_option(page, "#model", f"{CAMERA.label} — built in")
    expect_slider("frames", CAMERA.frames)
    for field in ("#steps", "#guidance", "#scheduler", "#negative"):
        expect(page.locator(field)).to_be_hidden()
    # A length only camera-preview allows, so the way back must put I2VGen-XL's own default in its place.
    set_number(page, "#frames", CAMERA.frames.max)
    expect(page.locator("#frames input[type=range]")).to_have_value(str(CAMERA.frames.max))

    pick_option(page, "#model", f"I2VGen-XL · {tiny_model.name} — local folder")
    expect_i2vgenxl()
    page.close()
