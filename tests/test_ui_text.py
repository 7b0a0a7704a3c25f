"""The page's one translation table: both languages complete, every stage and symptom named, and the progress bar
moving forward through a run. In-process, no browser."""

from __future__ import annotations

from types import SimpleNamespace

from i2v.advisor.troubleshoot import SYMPTOMS
from i2v.models.base import STAGES
from i2v.web.ui_text import STRINGS, lang_of, progress_html, progress_percent, tr


def test_english_and_chinese_have_the_same_keys_and_fill_the_same_placeholders():
    assert set(STRINGS["en"]) == set(STRINGS["zh"])
    for key, english in STRINGS["en"].items():
        assert sorted(part.split("}")[0] for part in english.split("{")[1:]) == sorted(
            part.split("}")[0] for part in STRINGS["zh"][key].split("{")[1:]), key


def test_every_stage_and_symptom_has_words_in_both_languages():
    for name in (*STAGES, "queued", "starting", "done"):
        assert f"stage.{name}" in STRINGS["en"], name
    for name in SYMPTOMS:
        assert f"symptom.{name}" in STRINGS["en"], name
    assert lang_of("zh-CN") == lang_of("zh-TW") == "zh" and lang_of("en-US") == lang_of(None) == "en"
    assert tr("zh", "step", i=3, n=10) == "第 3/10 步"


def view(state, stage, step=0, total=0, eta=None):
    return SimpleNamespace(state=state, queue_position=None, error=None,
                           progress=SimpleNamespace(stage=stage, step=step, total=total, eta_seconds=eta))


def test_the_bar_only_moves_forward_through_a_run():
    run = [view("queued", "queued"), view("running", "starting"), view("running", "load"), view("running", "refine"),
           view("running", "encode", 0, 10), *(view("running", "denoise", i, 10) for i in range(11)),
           view("running", "decode", 10, 10), view("running", "write", 10, 10), view("succeeded", "done", 10, 10)]
    percents = [progress_percent(item) for item in run]
    assert percents == sorted(percents) and percents[0] == 0 and percents[-1] == 100
    # Step i/N only while denoising: not before it (encode) nor after it (decode), as the issue asked.
    assert "step" not in progress_html("en", view("running", "encode", 0, 10))
    assert "step 4/10" in progress_html("en", view("running", "denoise", 4, 10, eta=12.0))
    assert "step" not in progress_html("en", view("running", "decode", 10, 10))


def test_a_cancelled_job_reads_as_cancelled_not_as_an_error():
    """A user's cancel is not an error: the card and the bar say where it stopped, in the page's language."""
    from i2v.web.ui_text import result_markdown

    job = SimpleNamespace(state="cancelled", queue_position=None, error="cancelled after step 12 of 60; nothing was written",
                          progress=SimpleNamespace(stage="denoise", step=12, total=60, eta_seconds=None),
                          refined_prompt=None, request={"seed": 3}, plan=None, timings=None, warnings=None)
    for lang, words in (("zh", "已在第 12/60 步取消"), ("en", "cancelled at step 12 of 60")):
        card, bar = result_markdown(lang, job, None, "tiny"), progress_html(lang, job)
        assert words in card and words in bar, (card, bar)
        assert tr(lang, "result.error") not in card and "i2v-error" not in bar and "cancelled after" not in card + bar


def test_the_troubleshooter_is_offered_for_a_clip_or_a_failure_the_advisor_knows():
    from i2v.web.ui_actions import troubleshootable

    assert troubleshootable("succeeded", None)
    assert troubleshootable("failed", "memory_exhausted")
    assert not troubleshootable("failed", "model_not_found")
    assert not troubleshootable("failed", "internal")  # a message that mentions memory is not the code
    assert not troubleshootable("cancelled", "cancelled")
    assert not troubleshootable("running", None)
