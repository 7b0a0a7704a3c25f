"""The web UI end to end in headless Chromium (Debian's package) driven by Playwright, against a real server."""

import os
import shutil

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


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_model):
    process = ServerProcess(tmp_path_factory.mktemp("ui-home"), tiny_model).start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        yield browser
        browser.close()


def test_generate_from_a_chinese_prompt_and_find_it_in_history(server, browser, tmp_path):
    photo = tmp_path / "cat.png"
    make_photo(300, 200).save(photo)
    page = browser.new_page(locale="zh-CN", viewport={"width": 1400, "height": 1100})
    page.goto(server.url + "/", wait_until="load")
    page.wait_for_selector("#prompt textarea", timeout=60_000)
    assert page.get_by_text("描述想要的动作").count() >= 1  # Chinese labels from the browser's locale

    page.set_input_files("#image input[type=file]", str(photo))
    # Words from the dictionary and words left out are shown beside the refined prompt, so the user can edit.
    page.fill("#prompt textarea", "猫在隧道里转头，咕噜噜")
    page.click("#refine")
    page.wait_for_function("document.querySelector('#refine_words').innerText.includes('咕噜噜')", timeout=30_000)
    words = page.inner_text("#refine_words")
    assert "隧道 = tunnel" in words and "edit the prompt" in words, words
    assert page.input_value("#refined textarea") == "A cat turning its head in the tunnel."
    page.fill("#prompt textarea", "猫转头")
    page.click("#refine")
    page.wait_for_function("!document.querySelector('#refined textarea').value.includes('tunnel')", timeout=30_000)
    assert "cat" in page.input_value("#refined textarea").lower()
    assert "咕噜噜" not in page.inner_text("#refine_words")

    page.get_by_text("高级设置").click()
    page.locator("#resolution input").click()
    page.get_by_role("option", name="256p").click()
    for field, value in (("#steps", "4"), ("#frames", "8")):
        box = page.locator(f"{field} input[type=number]")
        box.fill(value)
        box.press("Enter")
    page.click("#plan")
    page.wait_for_function("document.querySelector('#plan_box').innerText.includes('Plan')", timeout=60_000)
    assert "peak" in page.inner_text("#plan_box")
    page.click("#generate")
    page.wait_for_function(
        "document.querySelector('#status') && /running|queued|succeeded/.test(document.querySelector('#status').innerText)",
        timeout=60_000,
    )
    page.wait_for_selector("#video video", timeout=120_000)
    assert "succeeded" in page.inner_text("#status")
    source = page.locator("#video video").get_attribute("src")
    assert source and source.endswith(".mp4")
    playable = page.evaluate(
        """async () => { const v = document.querySelector('#video video');
            if (v.readyState < 1) await new Promise(r => v.addEventListener('loadedmetadata', r, {once: true}));
            return {duration: v.duration, width: v.videoWidth}; }"""
    )
    assert playable["duration"] > 0 and playable["width"] > 0
    assert "A cat turning its head" in page.inner_text("#details")
    page.screenshot(path=str(tmp_path / "ui.png"), full_page=True)

    page.reload(wait_until="load")
    page.wait_for_selector("#history img", timeout=60_000)
    assert page.locator("#history img").count() >= 1
    page.close()


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

    def pick_model(name):
        page.locator("#model input").click()
        page.get_by_role("option", name=name).click()

    page = browser.new_page(locale="en-US", viewport={"width": 1400, "height": 1100})
    page.goto(server.url + "/", wait_until="load")
    page.wait_for_selector("#prompt textarea", timeout=60_000)
    page.get_by_text("Advanced settings").click()
    page.wait_for_selector("#frames input[type=range]", timeout=30_000)
    assert str(tiny_model) in page.input_value("#model input")  # the default model: the tiny I2VGen-XL folder
    expect_i2vgenxl()

    # The picker names a built-in model by its spec's label, as the issue asks: "Camera preview (instant, no model)".
    pick_model(f"{CAMERA.label} — built in")
    assert page.input_value("#model input") == f"{CAMERA.label} — built in"
    expect_slider("frames", CAMERA.frames)
    for field in ("#steps", "#guidance", "#scheduler", "#negative"):
        expect(page.locator(field)).to_be_hidden()
    # A length only camera-preview allows, so the way back must put I2VGen-XL's own default in its place.
    frames = page.locator("#frames input[type=number]")
    frames.fill(str(CAMERA.frames.max))
    frames.press("Enter")
    expect(page.locator("#frames input[type=range]")).to_have_value(str(CAMERA.frames.max))

    pick_model(str(tiny_model))
    expect_i2vgenxl()
    page.close()
