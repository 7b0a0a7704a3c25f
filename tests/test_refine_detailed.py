"""The rule refiner's "detailed" form, for Wan 2.2 TI2V-5B: the same reading as the short form (same tags, same
content words) written out as a structured paragraph within the model's word budget.

The content-word rule: every word of the short prompt appears in the detailed one after both are lowercased, split
at anything that is not a letter or digit, and reduced to a crude stem (-ing, -ed, -s/-es and a doubled final
consonant taken off). The stem is what lets the short form's "camera panning to the left" be the detailed form's
"the camera pans to the left"; the subject and its action are carried over word for word.
"""

from __future__ import annotations

import re

import pytest
from test_refine_dictionary import EVERYDAY, EVERYDAY2
from test_refine_rules import BLIND, CJK, ODD_INPUTS, TABLE

from i2v.models.camera_preview.spec import SPEC as CAMERA_PREVIEW
from i2v.models.i2vgenxl.spec import SPEC as I2VGENXL
from i2v.models.wan22.spec import SPEC as WAN
from i2v.refine import make_refiner
from i2v.refine.base import CAMERA_TAGS, settings_hint_for
from i2v.refine.rules.detailed import (
    DETAILED_CAMERA,
    DETAILED_LOOK,
    DETAILED_NATURAL,
    DETAILED_NO_CAMERA,
    DETAILED_SHOTS,
    DETAILED_STILL,
    DETAILED_TEMPO,
)
from i2v.refine.rules.refiner import GENERIC_PROMPT, RuleRefiner

#: The brief's examples: a bare action, a camera move alone, tempo, English with a camera move, a static camera.
EXAMPLES = [
    "猫转头",
    "镜头慢慢推近",
    "海浪拍打沙滩，慢动作",
    "a woman smiles and waves, camera pans left",
    "固定镜头，树叶在风中摇曳",
]
MORE = [
    "镜头向左平移，海浪拍打沙滩",
    "慢动作，一个女孩在雨中跳舞",
    "镜头不动，猫慢慢转头",
    "猫一动不动地坐着，镜头缓慢推进",
    "一个男人在雪中慢慢行走，镜头跟拍",
    "特写，女孩眨眼",
    "延时摄影，云朵飘动",
    "循环，火焰燃烧",
    "快动作，汽车在马路上行驶",
    "手持镜头，男人在街上走路",
    "镜头逆时针环绕城堡",
    "镜头慢慢拉开，展示整片麦田",
    "仰拍火箭升空",
    "a dog running, zoom in",
    "camera pans left over a misty forest",
    "镜头右移",
]
#: What the detailed prompt says for each tag (the camera's verb in the third person, as a sentence says it).
NAMED = {
    "pan_left": "pans to the left", "pan_right": "pans to the right", "tilt_up": "tilts up", "tilt_down": "tilts down",
    "zoom_in": "zooms in", "zoom_out": "zooms out", "dolly_in": "pushes in", "dolly_out": "pulls back",
    "orbit_left": "orbits to the left", "orbit_right": "orbits to the right", "static_camera": "camera is static",
    "handheld": "camera is handheld", "slow_motion": "slow motion", "fast_motion": "fast motion",
    "timelapse": "time-lapse", "loop": "seamless loop",
}
ALL_TEXTS = [row[0] for row in TABLE + BLIND + EVERYDAY + EVERYDAY2]


def stem(word: str) -> str:
    for suffix in ("ing", "ed"):
        if word.endswith(suffix) and len(word) > len(suffix) + 2:
            word = word[: -len(suffix)]
            break
    else:
        if word.endswith(("ches", "shes", "sses", "xes", "zes")):
            word = word[:-2]
        elif word.endswith("s") and not word.endswith("ss") and len(word) > 3:
            word = word[:-1]
    return re.sub(r"([b-df-hj-np-tv-z])\1$", r"\1", word)


def content_words(text: str) -> set[str]:
    return {stem(word) for word in re.findall(r"[a-z0-9]+", text.lower())}


def both(text: str):
    return RuleRefiner(I2VGENXL).refine(text), RuleRefiner(WAN).refine(text)


def test_wan_asks_for_the_detailed_form():
    assert WAN.prompt.form == "detailed" and WAN.prompt.words == 120
    assert I2VGENXL.prompt.form == "short" and CAMERA_PREVIEW.prompt.form == "short"


@pytest.mark.parametrize("text", EXAMPLES + MORE)
def test_same_reading_longer_prompt(text):
    short, detailed = both(text)
    missing = content_words(short.prompt) - content_words(detailed.prompt)
    assert not missing, (missing, short.prompt, detailed.prompt)
    assert detailed.tags == short.tags
    # Everything but the prompt, the negative prompt and the settings hint (each model's own) is the reading
    # itself, and so the same; the hint is the same tags read through each model's rules.
    same = ("tags", "subject", "motion", "camera", "dropped", "from_dictionary", "notes")
    assert {f: getattr(detailed, f) for f in same} == {f: getattr(short, f) for f in same}
    assert detailed.settings_hint == settings_hint_for(detailed.tags, WAN)
    assert short.settings_hint == settings_hint_for(short.tags, I2VGENXL)
    assert detailed.negative_prompt == WAN.negative_prompt
    assert len(detailed.prompt.split()) > len(short.prompt.split())
    assert 45 <= len(detailed.prompt.split()) <= WAN.prompt.words, detailed.prompt
    assert not CJK.search(detailed.prompt)
    assert detailed.source == "rules"


@pytest.mark.parametrize("text", EXAMPLES + MORE)
def test_names_every_tag_and_otherwise_a_still_camera(text):
    detailed = RuleRefiner(WAN).refine(text)
    prompt = detailed.prompt.lower()
    for tag in detailed.tags:
        assert NAMED[tag] in prompt, (tag, detailed.prompt)
    shots = [phrase for phrase in detailed.camera.split(", ") if phrase in DETAILED_SHOTS]  # "close-up", untagged
    assert ("camera stays still" in prompt) == (not set(detailed.tags) & CAMERA_TAGS and not shots), detailed.prompt


def test_the_examples_read_well():
    """The paragraph for each of the brief's examples, in full: subject and action, tempo, camera, the image's look."""
    look = DETAILED_LOOK + "."
    assert RuleRefiner(WAN).refine("猫转头").prompt == (
        f"A cat turning its head. {DETAILED_NATURAL}. {DETAILED_NO_CAMERA}. {look}")
    # No subject: the camera move leads.
    assert RuleRefiner(WAN).refine("镜头慢慢推近").prompt == (
        f"The camera slowly pushes in toward the subject in one continuous move. {DETAILED_NATURAL}. {look}")
    assert RuleRefiner(WAN).refine("海浪拍打沙滩，慢动作").prompt == (
        f"Waves crashing onto a sandy beach. {DETAILED_TEMPO['slow_motion']}. {DETAILED_NO_CAMERA}. {look}")
    assert RuleRefiner(WAN).refine("a woman smiles and waves, camera pans left").prompt == (
        f"A woman smiles and waves. {DETAILED_NATURAL}. "
        f"The camera pans to the left across the scene in one smooth, continuous move. {look}")
    assert RuleRefiner(WAN).refine("固定镜头，树叶在风中摇曳").prompt == (
        f"Leaves swaying in the wind. {DETAILED_NATURAL}. {DETAILED_CAMERA['static_camera']}. {look}")


def test_order_subject_tempo_camera_look():
    prompt = RuleRefiner(WAN).refine("镜头向左平移，慢动作，一个女孩在雨中跳舞").prompt
    positions = [prompt.index(part) for part in (
        "A girl dancing in the rain", DETAILED_TEMPO["slow_motion"], "The camera pans to the left", DETAILED_LOOK)]
    assert positions == sorted(positions), prompt


def test_stillness_is_not_turned_into_motion():
    prompt = RuleRefiner(WAN).refine("猫一动不动地坐着").prompt
    assert DETAILED_STILL in prompt and DETAILED_NATURAL not in prompt


@pytest.mark.parametrize("text", ALL_TEXTS, ids=lambda t: t[:24])
def test_the_whole_phrase_table_keeps_its_words_and_tags(text):
    short, detailed = both(text)
    assert not content_words(short.prompt) - content_words(detailed.prompt), (short.prompt, detailed.prompt)
    assert detailed.tags == short.tags
    assert len(short.prompt.split()) < len(detailed.prompt.split()) <= WAN.prompt.words
    assert not CJK.search(detailed.prompt)


def test_no_invented_content():
    """The words the detailed form adds come from its fixed sentences, and those name no object, person, light
    source, weather or time of day: "the subject" is whatever the image shows."""
    fixed = " ".join([*DETAILED_CAMERA.values(), *DETAILED_SHOTS.values(), *DETAILED_TEMPO.values(), DETAILED_NATURAL,
                      DETAILED_STILL, DETAILED_NO_CAMERA, DETAILED_LOOK, GENERIC_PROMPT,
                      "in one smooth, continuous move"]).lower()
    invented = ("sun", "sunlight", "light", "rain", "snow", "wind", "weather", "night", "day", "morning", "evening",
                "dusk", "dawn", "sunset", "fog", "mist", "cinematic", "beautiful", "person", "people", "man", "woman",
                "girl", "boy", "cat", "dog", "tree", "sky", "water", "lamp", "candle", "fire")
    # "first-person view" is said only when the user asked for one (第一人称视角).
    assert not [word for word in invented if re.search(rf"\b{word}s?\b", fixed.replace("first-person", ""))]
    for text in EXAMPLES + MORE + ALL_TEXTS:
        short, detailed = both(text)
        added = content_words(detailed.prompt) - content_words(short.prompt)
        assert added <= content_words(fixed), (text, added - content_words(fixed))


@pytest.mark.parametrize("text", ODD_INPUTS, ids=lambda t: repr(t[:12]))
def test_odd_and_over_long_input_stays_within_the_budget(text):
    result = RuleRefiner(WAN).refine(text)
    assert result.prompt.strip() and not CJK.search(result.prompt)
    assert len(result.prompt.split()) <= WAN.prompt.words
    assert result.tags == RuleRefiner(I2VGENXL).refine(text).tags


def test_over_long_text_is_cut_with_a_note_and_keeps_its_camera():
    text = "镜头向左平移，" + "，".join(["一只白色的猫在草地上慢慢地走"] * 20)
    result = RuleRefiner(WAN).refine(text)
    assert len(result.prompt.split()) <= WAN.prompt.words
    assert result.tags == ["pan_left"] and "pans to the left" in result.prompt
    assert result.prompt.startswith("A white cat walking slowly on the grass")
    assert any("120-word prompt budget" in note and "cut" in note for note in result.notes), result.notes
    # The short form keeps everything and warns, as it always did.
    assert any("77 tokens" in note for note in RuleRefiner(I2VGENXL).refine(text).notes)
    assert not any("budget" in note for note in RuleRefiner(WAN).refine("猫转头").notes)


def test_nothing_understood_gives_the_generic_paragraph():
    result = RuleRefiner(WAN).refine("🐱🐶🌊")
    assert result.prompt.startswith(GENERIC_PROMPT) and DETAILED_NO_CAMERA in result.prompt
    assert len(result.prompt.split()) <= WAN.prompt.words and result.notes


def test_the_short_form_is_unchanged():
    for text in EXAMPLES + MORE:
        assert RuleRefiner(I2VGENXL).refine(text) == RuleRefiner().refine(text)
        assert RuleRefiner(CAMERA_PREVIEW).refine(text).prompt == RuleRefiner().refine(text).prompt


def test_make_refiner_and_the_python_api_write_for_wan():
    from i2v.refine import refine

    assert make_refiner("rules", spec=WAN).refine("猫转头") == RuleRefiner(WAN).refine("猫转头")
    assert refine("猫转头", model="wan2.2-ti2v-5b").prompt == RuleRefiner(WAN).refine("猫转头").prompt
    assert refine("猫转头").prompt == "A cat turning its head."
