"""The offline rule refiner: a phrase table (tags + words that must survive), odd input, and tag precision/recall.

Run `python tests/test_refine_rules.py` to print the tag micro precision/recall over the table.
"""

from __future__ import annotations

import json
import re
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from helpers import run_cli

from i2v.refine.base import TAGS, RefinedPrompt
from i2v.refine.rules.refiner import GENERIC_PROMPT, RuleRefiner, refine_text
from i2v.models.camera_preview.spec import SPEC as CAMERA_PREVIEW
from i2v.models.i2vgenxl.spec import NEGATIVE_PROMPT as DEFAULT_NEGATIVE_PROMPT
from i2v.models.i2vgenxl.spec import SPEC as I2VGENXL
from i2v.models.wan22.spec import SPEC as WAN_SPEC
from i2v.request import GenerationRequest

CJK = re.compile(
    "[\u2e80-\u2fdf\u3000-\u303f\u3040-\u30ff\u3100-\u31ff\u3200-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
    "\uff00-\uffef\U00020000-\U0003ffff]"
)

# (text, expected tags (exact set), lowercase substrings the prompt must contain)
TABLE: list[tuple[str, set[str], list[str]]] = [
    # --- required cases
    ("猫转头", set(), ["cat", "turn", "head"]),
    ("镜头向左平移，海浪拍打沙滩", {"pan_left"}, ["waves", "beach"]),
    ("慢动作，一个女孩在雨中跳舞", {"slow_motion"}, ["girl", "rain", "danc"]),
    ("海浪动", set(), ["waves", "mov"]),
    ("咖啡杯冒着热气", set(), ["coffee", "cup", "steam"]),
    ("火箭升空", set(), ["rocket", "lift"]),
    ("宇航员挥手", set(), ["astronaut", "wav"]),
    ("宇航员微笑", set(), ["astronaut", "smil"]),
    ("a dog running, zoom in", {"zoom_in"}, ["dog", "running", "zoom"]),
    # --- Chinese: camera language
    ("镜头不动，猫慢慢转头", {"static_camera"}, ["cat", "turn", "head", "slowly", "static"]),
    ("固定镜头，瀑布流动", {"static_camera"}, ["waterfall", "flow"]),
    ("镜头缓缓推近，女孩微笑", {"dolly_in"}, ["girl", "smil", "slowly"]),
    ("镜头拉远，夜晚的城市", {"zoom_out"}, ["city", "night"]),
    ("环绕拍摄一辆红色汽车", {"orbit_right"}, ["red", "car", "orbit"]),
    ("镜头向右环绕，雕像", {"orbit_right"}, ["statue"]),
    ("镜头向左环绕女孩", {"orbit_left"}, ["girl"]),
    ("镜头逆时针环绕城堡", {"orbit_left"}, ["castle"]),
    ("俯拍，河流流动", {"tilt_down"}, ["river", "flow"]),
    ("仰拍火箭升空", {"tilt_up"}, ["rocket", "lift"]),
    ("手持镜头，男人在街上走路", {"handheld"}, ["man", "street", "walk"]),
    ("延时摄影，云朵飘动", {"timelapse"}, ["clouds", "drift"]),
    ("循环，火焰燃烧", {"loop"}, ["flame", "burn"]),
    ("快动作，汽车在马路上行驶", {"fast_motion"}, ["car", "road"]),
    ("镜头向上摇，瀑布", {"tilt_up"}, ["waterfall"]),
    ("镜头向下，落叶飘落", {"tilt_down"}, ["leaves"]),
    ("镜头右移", {"pan_right"}, ["camera"]),
    ("画面放大", {"zoom_in"}, ["zoom"]),
    ("海浪拍打岩石，慢动作", {"slow_motion"}, ["waves", "rock", "crash"]),
    ("宇航员在太空中漂浮，镜头环绕", {"orbit_right"}, ["astronaut", "space", "float"]),
    ("一个男人在雪中慢慢行走，镜头跟拍", set(), ["man", "snow", "walk", "slowly", "tracking"]),
    ("特写，女孩眨眼", set(), ["girl", "blink", "close-up"]),
    ("航拍，群山和云海", set(), ["mountains", "clouds", "aerial"]),
    ("火山喷发，岩浆流动，航拍", set(), ["volcano", "erupt", "lava", "flow"]),
    ("镜头静止，只有烟雾缓缓上升", {"static_camera"}, ["smoke", "rising"]),
    ("画面静止，只有头发在飘", {"static_camera"}, ["hair", "drift"]),
    ("猫一动不动地坐着，镜头缓慢推进", {"dolly_in"}, ["cat", "still", "sitting"]),
    ("快速推进到女孩的眼睛", {"dolly_in"}, ["girl", "eyes"]),
    ("镜头轻微晃动，像手持拍摄", {"handheld"}, []),
    ("猫在跑，画面循环", {"loop"}, ["cat", "run"]),
    ("慢镜头：蜂鸟扇动翅膀", {"slow_motion"}, ["flap", "wings"]),
    ("延时，星空旋转", {"timelapse"}, ["starry sky", "spin"]),
    # --- Chinese: scenes without camera language
    ("小狗摇尾巴", set(), ["puppy", "wag", "tail"]),
    ("鸟在天空中飞翔", set(), ["bird", "sky", "fly"]),
    ("一只白色的猫在草地上慢慢地走", set(), ["white cat", "grass", "walk", "slowly"]),
    ("女孩的长发随风飘动", set(), ["girl", "hair", "wind", "drift"]),
    ("风吹动树叶", set(), ["wind", "blow", "leaves"]),
    ("旗帜在风中飘扬", set(), ["flag", "wind", "flutter"]),
    ("两只狗在海边奔跑", set(), ["two dogs", "sea", "running"]),
    ("老人坐在窗边看书", set(), ["elderly", "window", "reading"]),
    ("雪花飘落，夜晚", set(), ["snowflakes", "night"]),
    ("金鱼在水中游动", set(), ["goldfish", "water", "swim"]),
    ("蜡烛的火焰轻轻跳动", set(), ["candle", "flame", "gently", "flicker"]),
    ("星空下，萤火虫闪烁", set(), ["starry sky", "firefl", "twinkl"]),
    ("一群海鸥在海面上盘旋", set(), ["seagulls", "sea", "circl"]),
    ("女孩转身微笑，然后挥手", set(), ["girl", "turn", "smil", "wav"]),
    ("蒸汽从咖啡杯里冒出来", set(), ["steam", "coffee cup"]),
    ("火焰在壁炉里燃烧", set(), ["flame", "burn"]),
    ("湖面泛起涟漪", set(), ["lake", "rippl"]),
    ("人群在广场上跳舞", set(), ["crowd", "danc"]),
    ("婴儿在睡觉", set(), ["baby", "sleep"]),
    ("猫咪打哈欠然后伸懒腰", set(), ["cat", "yawn", "stretch"]),
    ("让照片里的人动起来", set(), ["person", "mov"]),
    ("一只猫在草地上跑，小狗追着它", set(), ["cat", "grass", "puppy", "chas"]),
    ("猫转头狗跑", set(), ["cat", "head", "dog", "run"]),
    ("马在草原上奔跑", set(), ["horse", "grassland", "running"]),
    ("熊猫在竹林里吃竹子", set(), ["panda", "bamboo", "eat"]),
    ("樱花花瓣随风飘落", set(), ["cherry blossom", "petals", "wind"]),
    # --- English (kept as written, tags found)
    ("a girl dancing in the rain, slow motion", {"slow_motion"}, ["girl", "dancing", "rain", "slow motion"]),
    ("a cat turning its head, static camera", {"static_camera"}, ["cat", "turning its head", "static camera"]),
    ("camera pans left over a misty forest", {"pan_left"}, ["misty forest", "pans left"]),
    ("time-lapse of clouds over mountains", {"timelapse"}, ["clouds over mountains"]),
    ("slow zoom in on a cup of coffee", {"zoom_in"}, ["cup of coffee"]),
    ("orbit around the statue", {"orbit_right"}, ["statue"]),
    ("handheld shot of a busy street market", {"handheld"}, ["busy street market"]),
    ("seamless loop of a flickering candle", {"loop"}, ["flickering candle"]),
    ("the camera tilts up to reveal the skyscraper", {"tilt_up"}, ["skyscraper", "reveal"]),
    ("dolly in toward the astronaut", {"dolly_in"}, ["astronaut"]),
    ("pull back from the lighthouse", {"dolly_out"}, ["lighthouse"]),
    ("a hummingbird hovering near a flower", set(), ["hummingbird hovering near a flower"]),
    ("zoom out to reveal the city skyline at sunset", {"zoom_out"}, ["city skyline at sunset"]),
    ("a boat sailing on a calm lake, camera tilts down", {"tilt_down"}, ["boat sailing on a calm lake"]),
    ("a horse galloping across a field, tracking shot", set(), ["horse galloping", "tracking shot"]),
    ("a waterfall, camera static", {"static_camera"}, ["waterfall", "static camera"]),
    ("photo of a cat, make it move", set(), ["cat", "make it move"]),
    ("the wind blows, leaves fall", set(), ["wind blows", "leaves fall"]),
    ("zoom in slowly while the girl smiles", {"zoom_in"}, ["girl smiles"]),
    ("a spinning top, camera circling it", {"orbit_right"}, ["spinning top"]),
    ("a still lake reflecting mountains", set(), ["still lake reflecting mountains"]),
    ("pan across the skyline", set(), ["skyline"]),
    # --- mixed scripts
    ("一个女孩 dancing in the rain", set(), ["girl", "dancing in the rain"]),
    ("猫 turning its head, 镜头不动", {"static_camera"}, ["cat", "turning its head"]),
    ("一只corgi在草地上奔跑", set(), ["corgi", "grass", "running"]),
    ("car drifting around a corner, 慢动作", {"slow_motion"}, ["car drifting around a corner"]),
    ("镜头向左平移, a lighthouse on a cliff", {"pan_left"}, ["lighthouse on a cliff"]),
    ("timelapse, 城市夜景", {"timelapse"}, ["city", "night"]),
    # --- harder / ambiguous: written before running the refiner on them (see HARD below)
    ("女孩手持鲜花", set(), ["girl", "flowers"]),  # 手持 is "holding", not a handheld camera
    ("树枝左右摇摆", set(), ["branches", "sway"]),  # 右摇 inside 左右摇摆 is not a tilt/pan
    ("汽车向左移动", set(), ["car", "left"]),  # the car moves, not the camera
    ("鸟向上飞", set(), ["bird", "fly"]),
    ("猫的眼睛慢慢放大", set(), ["cat", "eyes"]),  # eyes widening, not a zoom
    ("群山环绕的湖泊", set(), ["mountains", "lake"]),  # surrounded by mountains, not an orbit
    ("蜜蜂绕着花飞", set(), ["bee", "flower"]),  # the bee circles, not the camera
    ("slow-moving clouds over the hills", set(), ["slow-moving clouds"]),
    ("a chef flipping a pan", set(), ["chef", "pan"]),
    ("a dog running in a loop", set(), ["dog", "loop"]),  # running in circles, not a looping clip
    ("she pulls back her hair", set(), ["hair"]),  # not a dolly out
    ("镜头慢慢上升，俯瞰城市", {"tilt_down"}, ["city"]),  # rising crane, looking down over the city
    ("camera slowly rises above the forest", set(), ["forest"]),  # a crane move: no tag for it
    ("zoom into the cat's eyes", {"zoom_in"}, ["cat's eyes"]),
    ("拉开窗帘", set(), ["curtain"]),  # opening the curtains, not a dolly out
    ("镜头平移", set(), ["camera"]),  # no direction: no pan tag
    ("镜头从左向右平移", {"pan_right"}, []),
    ("camera moves from right to left", {"pan_left"}, []),
    ("不要移动镜头，让水流动", {"static_camera"}, ["water", "flow"]),
    ("镜头推向窗外的雨", {"dolly_in"}, ["rain"]),
    ("镜头跟随骑自行车的男孩", set(), ["boy", "bicycle"]),
    ("镜头跟着蝴蝶向右移动", {"pan_right"}, ["butterfly"]),  # following a subject moving right
    ("画面慢慢变暗", set(), []),
    ("从高处俯视整个村庄", {"tilt_down"}, []),
    ("拍摄角度从低到高", {"tilt_up"}, []),
    ("the camera follows a running dog", set(), ["running dog"]),
    ("bird's-eye view of a city", {"tilt_down"}, ["city"]),
    ("low-angle shot of a giant robot walking", {"tilt_up"}, ["robot"]),
    ("左摇右摆的小船", set(), ["boat"]),  # a boat rocking, not a pan
    ("女孩看着镜头微笑", set(), ["girl", "camera", "smil"]),  # 镜头 as the thing she looks at
    ("镜头里的猫在睡觉", set(), ["cat", "sleep"]),
    ("a slow pan of the ocean at dawn", set(), ["ocean at dawn"]),  # pan with no direction
]

#: Written after the refiner was finished and never used to change it: an honest estimate of new phrasing.
BLIND: list[tuple[str, set[str], list[str]]] = [
    ("镜头缓缓后退，露出整个房间", {"dolly_out"}, []),
    ("猫从桌子上跳下来", set(), ["cat", "jump"]),
    ("a timelapse-style sunset over the sea", {"timelapse"}, ["sunset over the sea"]),
    ("the camera shakes as the train passes", {"handheld"}, ["train passes"]),
    ("spin the camera around the car", {"orbit_right"}, ["car"]),
    ("镜头拉近到女孩的脸上", {"zoom_in"}, ["girl", "face"]),
    ("女孩向镜头走来", set(), ["girl", "walk"]),
    ("放慢速度，小鸟起飞", {"slow_motion"}, ["bird", "taking off"]),
    ("加速，云在飘", {"fast_motion"}, ["clouds", "drift"]),
    ("摄像机缓慢向前推进，穿过森林", {"dolly_in"}, ["forest"]),
    ("小船在湖上摇晃", set(), ["boat", "lake", "sway"]),
    ("上下摇动的树枝", set(), ["branches"]),
    ("make the picture loop forever", {"loop"}, ["loop"]),
    ("frozen in time, snow falling", set(), ["snow falling"]),
    ("镜头围绕着雕像旋转", {"orbit_right"}, ["statue"]),
    ("一只狐狸在雪地里奔跑，镜头从右往左摇", {"pan_left"}, ["fox", "snow", "running"]),
    ("烟花在夜空中绽放，镜头仰拍", {"tilt_up"}, ["fireworks"]),
    ("a koi pond, top-down shot, koi swimming in circles", {"tilt_down"}, ["koi"]),
    ("镜头慢慢拉开，展示整片麦田", {"dolly_out"}, ["wheat field"]),
    ("风车缓缓转动，固定机位", {"static_camera"}, ["windmill", "turning", "slowly"]),
]

#: Rows where the rules get the tags wrong today; kept in the table and in the metric, xfail in the exact test.
KNOWN_MISSES = {
    "a dog running in a loop": "any 'loop' is read as a looping clip",
    "she pulls back her hair": "'pulls back' is read as a dolly out",
    "镜头慢慢上升，俯瞰城市": "俯瞰 only counts in a clause that names the camera",
    "镜头跟着蝴蝶向右移动": "the subject's direction is not carried over to a following camera",
    "从高处俯视整个村庄": "俯视 without 镜头 is not trusted as camera language",
    "拍摄角度从低到高": "angle changes described in words are not understood",
}

ODD_INPUTS = [
    "🐱🐶🌊", "？？？！！！", "...,,,;;", "", "   ", "12345", "3.14159", "猫ねこ고양이кошка cat", "ＡＢＣ　全角 ｃａｔ",
    "\x00\x01猫\u200b转头", "a" * 2000, "猫转头" * 700, "镜头" * 50, "的的的的", "向", "一只", "女孩和", "和猫",
    "cat😀 running 🎉 fast", "Ünïcödé café résumé", "镜头向左平移" * 300, "🙂" * 1000,
    "zoom in zoom out pan left pan right static camera", "慢", "2024年12月31日", "!!!猫!!!", "\n\n\t猫\n狗\n",
    "<script>alert(1)</script>", "{\"prompt\": \"x\"}", "ﾈｺ", "猫" * 2000, "a cat " * 400,
]


def tags_of(text: str) -> set[str]:
    return set(RuleRefiner().refine(text).tags)


def tag_precision_recall(table: list[tuple[str, set[str], list[str]]] = TABLE) -> tuple[float, float, int, int, int]:
    """Micro precision and recall of the refiner's tags over the table: (precision, recall, tp, fp, fn)."""
    tp = fp = fn = 0
    for text, expected, _ in table:
        got = tags_of(text)
        tp += len(got & expected)
        fp += len(got - expected)
        fn += len(expected - got)
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    return precision, recall, tp, fp, fn


def _row_id(row: tuple[str, set[str], list[str]]) -> str:
    return row[0][:24]


@pytest.mark.parametrize("row", TABLE + BLIND, ids=_row_id)
def test_required_words_survive_and_no_cjk(row):
    text, _, words = row
    result = RuleRefiner().refine(text)
    prompt = result.prompt.lower()
    for word in words:
        assert word in prompt, f"{word!r} missing from {result.prompt!r}"
    assert not CJK.search(result.prompt), result.prompt
    assert not CJK.search(result.negative_prompt + result.subject + result.motion + result.camera)
    assert result.source == "rules"


@pytest.mark.parametrize(
    "row",
    [pytest.param(row, marks=pytest.mark.xfail(reason=KNOWN_MISSES[row[0]], strict=True)) if row[0] in KNOWN_MISSES
     else row for row in TABLE],
    ids=_row_id,
)
def test_tags_exact(row):
    text, expected, _ = row
    assert tags_of(text) == expected


def test_precision_and_recall_floor():
    precision, recall, *_ = tag_precision_recall()
    assert precision >= 0.9
    assert recall >= 0.85
    blind_precision, blind_recall, *_ = tag_precision_recall(BLIND)
    assert blind_precision >= 0.9
    assert blind_recall >= 0.7


def test_required_cases_read_well():
    assert RuleRefiner().refine("猫转头").prompt == "A cat turning its head."
    assert RuleRefiner().refine("镜头向左平移，海浪拍打沙滩").prompt == "Waves crashing onto a sandy beach, camera panning to the left."
    assert RuleRefiner().refine("慢动作，一个女孩在雨中跳舞").prompt == "A girl dancing in the rain, slow motion."
    assert RuleRefiner().refine("镜头不动，猫慢慢转头").prompt == "A cat turning its head slowly, static camera."


def test_fields():
    result = RuleRefiner().refine("镜头向左平移，海浪拍打沙滩")
    assert result.subject == "waves"
    assert result.motion == "crashing onto a sandy beach"
    assert result.camera == "camera panning to the left"
    english = RuleRefiner().refine("a hummingbird hovering near a flower, zoom in")
    assert english.subject == "a hummingbird"
    assert english.motion.startswith("hovering")
    assert english.camera == "camera zooming in"


@pytest.mark.parametrize("text", ODD_INPUTS, ids=lambda t: repr(t[:12]))
def test_odd_input_never_raises(text):
    """The reading and the writing themselves take odd input: called without the refiner's catch-all (which
    would turn any exception into a generic prompt, so a test through it alone passes whatever the parser does),
    and the refiner gives that same answer, with no error note."""
    result = refine_text(text, I2VGENXL)
    assert isinstance(result, RefinedPrompt)
    assert result.source == "rules" and not any(note.startswith("rule refiner error") for note in result.notes)
    assert result.prompt.strip()
    assert not CJK.search(result.prompt)
    assert set(result.tags) <= set(TAGS)
    assert RuleRefiner(I2VGENXL).refine(text) == result


def test_a_parser_that_raises_gives_the_generic_prompt_and_says_so(monkeypatch):
    """The catch-all the test above must not rely on: a bug in the parser still ends in a prompt, with a note."""
    from i2v.refine.rules.parse import ClauseReader

    def broken(self):
        raise RuntimeError("parser bug")

    monkeypatch.setattr(ClauseReader, "read", broken)
    result = RuleRefiner(I2VGENXL).refine("猫转头")
    assert result.prompt == GENERIC_PROMPT and result.notes == ["rule refiner error (RuntimeError); generic prompt used"]
    with pytest.raises(RuntimeError, match="parser bug"):
        refine_text("猫转头", I2VGENXL)


def test_nothing_understood_gives_an_honest_generic_prompt():
    # 侊侎侒: characters neither the lexicon nor CC-CEDICT has.
    for text in ("🐱🐶🌊", "？？？", "的的的", "侊侎侒"):
        result = RuleRefiner().refine(text)
        assert result.prompt == GENERIC_PROMPT
        assert result.notes


def test_unknown_chinese_is_dropped_and_named_in_notes():
    result = RuleRefiner().refine("火焰在壁炉里燃烧，旁边有个侊侎")
    assert "flames burning" in result.prompt.lower()
    assert result.dropped == ["侊侎"]
    assert any(note.startswith("not understood") and "侊侎" in note for note in result.notes)
    assert not CJK.search(result.prompt)
    assert RuleRefiner().refine("侊侎侒").dropped == ["侊侎侒"]
    assert RuleRefiner().refine("猫转头").dropped == []


def test_the_cli_names_the_words_it_left_out():
    result = run_cli("refine", "猫在隧道里转头，咕噜噜")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "A cat turning its head in the tunnel."
    lines = result.stderr.splitlines()
    assert "not understood (edit the prompt if they matter): 咕噜噜" in lines
    assert "note: from the dictionary: 隧道 = tunnel" in lines
    assert result.stderr.count("咕噜噜") == 1  # said once, not again as a note
    as_json = run_cli("refine", "--json", "咕噜噜")
    payload = json.loads(as_json.stdout)
    assert payload["dropped"] == ["咕噜噜"] and payload["from_dictionary"] == {}
    assert "not understood (edit the prompt if they matter): 咕噜噜" in as_json.stderr
    assert "not understood" not in run_cli("refine", "猫转头").stderr


def test_unknown_english_is_kept_as_written():
    text = "a xylophonist serenading quokkas beneath crenellated ramparts"
    assert RuleRefiner().refine(text).prompt == "A xylophonist serenading quokkas beneath crenellated ramparts."
    mixed = RuleRefiner().refine("a xylophonist serenading quokkas, pan right")
    assert mixed.prompt == "A xylophonist serenading quokkas, camera panning to the right."
    assert mixed.tags == ["pan_right"]


def test_no_invented_content():
    invented = ("sun", "light", "rain", "weather", "cinematic", "beautiful", "person", "people", "wind")
    for text in ("猫转头", "海浪动", "火箭升空", "a dog running, zoom in"):
        prompt = RuleRefiner().refine(text).prompt.lower()
        assert not [word for word in invented if re.search(rf"\b{word}\b", prompt)], prompt


def test_settings_hint_follows_tags():
    hint = RuleRefiner().refine("慢动作，一个女孩在雨中跳舞").settings_hint
    assert hint is not None and hint.num_frames == 24 and hint.fps == 8
    assert RuleRefiner().refine("猫转头").settings_hint is None
    assert RuleRefiner().refine("镜头不动，猫转头").settings_hint.guidance_scale == 9.0


def test_negative_prompt():
    assert RuleRefiner().refine("猫转头").negative_prompt == DEFAULT_NEGATIVE_PROMPT
    assert RuleRefiner().refine("镜头不动，猫转头").negative_prompt == DEFAULT_NEGATIVE_PROMPT
    for text in ("猫一动不动地坐着", "a motionless cat on a sofa", "女孩静静地坐着"):
        negative = RuleRefiner().refine(text).negative_prompt.lower()
        assert "motionless" not in negative and "static" not in negative
        assert "blurry" in negative


def test_negative_prompt_is_the_target_models():
    """RuleRefiner(spec) tailors that spec's own negative prompt; the default is the default model's."""
    from i2v.models.registry import DEFAULT_MODEL, spec_for

    assert spec_for(DEFAULT_MODEL) == I2VGENXL
    assert RuleRefiner(I2VGENXL).refine("猫转头").negative_prompt == I2VGENXL.negative_prompt == DEFAULT_NEGATIVE_PROMPT
    own = I2VGENXL.model_copy(update={"negative_prompt": "watermark, Static, blurry, motionless, text"})
    assert RuleRefiner(own).refine("猫转头").negative_prompt == own.negative_prompt
    assert RuleRefiner(own).refine("镜头不动，猫转头").negative_prompt == own.negative_prompt
    for text in ("猫一动不动地坐着", "a motionless cat on a sofa", "女孩静静地坐着"):
        assert RuleRefiner(own).refine(text).negative_prompt == "watermark, blurry, text"
    assert RuleRefiner(own).refine("🐱🐶🌊").negative_prompt == own.negative_prompt  # the generic prompt's too


def test_no_negative_prompt_for_a_model_without_one():
    assert CAMERA_PREVIEW.negative_prompt is None
    refiner = RuleRefiner(CAMERA_PREVIEW)
    for text in ("猫转头", "镜头向左平移，海浪拍打沙滩", "猫一动不动地坐着", "a dog running, zoom in", "🐱🐶🌊", "侊侎侒"):
        result = refiner.refine(text)
        assert result.negative_prompt == "", (text, result.negative_prompt)
    # The prompt itself does not depend on the target model's negative prompt.
    assert refiner.refine("镜头向左平移，海浪拍打沙滩").prompt == RuleRefiner(I2VGENXL).refine("镜头向左平移，海浪拍打沙滩").prompt
    assert refiner.refine("镜头向左平移，海浪拍打沙滩").tags == ["pan_left"]


def test_long_prompt_gets_a_note():
    result = RuleRefiner().refine(", ".join(["a cat walking slowly across a sunny garden"] * 10))
    assert any("77 tokens" in note for note in result.notes)
    assert not any("77 tokens" in note for note in RuleRefiner().refine("猫转头").notes)


def test_orbit_without_direction_defaults_right_with_a_note():
    result = RuleRefiner().refine("镜头环绕")
    assert result.tags == ["orbit_right"]
    assert any("orbit direction" in note for note in result.notes)


def test_image_is_accepted_and_ignored():
    from PIL import Image

    image = Image.new("RGB", (8, 8))
    assert RuleRefiner().refine("猫转头", image).prompt == RuleRefiner().refine("猫转头").prompt


def test_tokenizer_and_dictionary_are_built_once_even_when_threads_race(monkeypatch):
    """What made the refiner fast after its first use: jieba's tokenizer and CC-CEDICT are built once and kept,
    even when several threads refine at once from a cold start (the server refines on worker threads). Counted,
    not timed: `python bench/refine.py` prints the time per call."""
    jieba = pytest.importorskip("jieba")
    from i2v.refine import dictionary
    from i2v.refine.rules import segment

    built = []
    opened = []
    real_tokenizer, real_open = jieba.Tokenizer, dictionary.gzip.open

    class CountedTokenizer(real_tokenizer):
        def __init__(self, *args, **kwargs):
            built.append(threading.get_ident())
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(jieba, "Tokenizer", CountedTokenizer)
    monkeypatch.setattr(dictionary.gzip, "open", lambda *args, **kwargs: opened.append(1) or real_open(*args, **kwargs))
    monkeypatch.setattr(segment, "_jieba", None)  # cold: as in a fresh process
    dictionary._entries.cache_clear()
    dictionary.lookup.cache_clear()
    texts = [row[0] for row in TABLE] + ["火车穿过隧道", "小狗拍打篮球"]  # the last two need the dictionary
    start = threading.Barrier(4)

    def refine_all(_: int) -> list[str]:
        start.wait()
        return [RuleRefiner().refine(text).prompt for text in texts]

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(refine_all, range(4)))
    assert len(built) == 1, f"jieba's tokenizer was built {len(built)} times"
    assert len(opened) == 1, f"CC-CEDICT was read {len(opened)} times"
    assert all(result == results[0] for result in results)  # the racing threads agree
    assert results[0][-2] == "A train passing through a tunnel."
    for text in texts:  # and once built, both are reused
        RuleRefiner().refine(text)
    assert (len(built), len(opened)) == (1, 1)


def test_jiebas_cache_lives_in_the_data_folder_and_a_planted_shared_one_is_never_read(monkeypatch, tmp_path):
    """jieba keeps its 9 MB prefix dictionary in a cache it loads with marshal; by default that is `jieba.cache`
    in the shared temp folder, where another local user can plant one first. The refiner's cache is in the data
    folder (this user's only): a planted shared cache is neither read nor replaced, and nothing else is written
    to the temp folder."""
    import marshal
    import stat
    import tempfile

    jieba = pytest.importorskip("jieba")
    from i2v.refine.rules import segment

    shared, home = tmp_path / "tmp", tmp_path / "home"
    shared.mkdir()
    planted = shared / "jieba.cache"
    planted.write_bytes(marshal.dumps(({"猫": 1, "转头": 1}, 2)))  # a segmenter of someone else's choosing
    monkeypatch.setattr(tempfile, "tempdir", str(shared))
    monkeypatch.setenv("TMPDIR", str(shared))
    monkeypatch.setenv("I2V_HOME", str(home))
    loaded: list[str] = []
    real_load = marshal.load

    class Marshal:  # jieba's `marshal`, recording each cache file it loads
        dumps, loads, dump = marshal.dumps, marshal.loads, marshal.dump

        @staticmethod
        def load(file):
            loaded.append(file.name)
            return real_load(file)

    monkeypatch.setattr(jieba, "marshal", Marshal)
    before = planted.read_bytes()
    for _ in range(2):  # cold twice: the first run writes the cache, the second reads it
        monkeypatch.setattr(segment, "_jieba", None)
        assert "cat turning its head" in RuleRefiner().refine("猫转头").prompt.lower()
    cache = home / "cache" / "jieba.cache"
    assert loaded == [str(cache)]
    assert stat.S_IMODE(cache.parent.stat().st_mode) == 0o700 and stat.S_IMODE(cache.stat().st_mode) == 0o600
    assert sorted(shared.iterdir()) == [planted] and planted.read_bytes() == before


def test_the_lexicon_is_a_data_file_the_package_ships():
    """The curated words are data (`lexicon.json`, in pyproject's package-data so a wheel carries it), not
    Python literals: the module that reads it holds no Chinese string of its own."""
    import ast
    import tomllib
    from pathlib import Path

    from i2v.refine.rules import lexicon

    folder = Path(lexicon.__file__).parent
    data_files = sorted(path.name for path in folder.iterdir() if path.is_file() and path.suffix != ".py")
    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text(encoding="utf-8"))
    assert data_files == ["lexicon.json"]
    assert "refine/rules/lexicon.json" in pyproject["tool"]["setuptools"]["package-data"]["i2v"]
    code = ast.parse(Path(lexicon.__file__).read_text(encoding="utf-8"))
    patterns = {id(part) for node in ast.walk(code) if isinstance(node, ast.JoinedStr) for part in node.values}
    assert not [node.value for node in ast.walk(code) if isinstance(node, ast.Constant) and isinstance(node.value, str)
                and CJK.search(node.value) and id(node) not in patterns]  # only the quantity patterns' numerals
    assert lexicon.PEOPLE["女孩"] == lexicon.Noun("girl", pos="her") and lexicon.ACTIONS["转头"].ing == "turning {pos} head"
    assert len(lexicon.LEXICON) > 1000


if __name__ == "__main__":
    p, r, tp, fp, fn = tag_precision_recall()
    print(f"{len(TABLE)} phrases: tag micro precision {p:.3f}, recall {r:.3f} (tp={tp} fp={fp} fn={fn})")
    for text, expected, _ in TABLE:
        got = tags_of(text)
        if got != expected:
            print(f"  {text!r}: expected {sorted(expected)}, got {sorted(got)}")
    p, r, tp, fp, fn = tag_precision_recall(BLIND)
    print(f"{len(BLIND)} blind phrases: tag micro precision {p:.3f}, recall {r:.3f} (tp={tp} fp={fp} fn={fn})")
    for text, expected, _ in BLIND:
        got = tags_of(text)
        if got != expected:
            print(f"  {text!r}: expected {sorted(expected)}, got {sorted(got)} -> {RuleRefiner().refine(text).prompt}")


@pytest.mark.parametrize("spec", [I2VGENXL, WAN_SPEC, CAMERA_PREVIEW], ids=lambda spec: spec.backend)
@pytest.mark.parametrize("text", ["慢动作，一个女孩在雨中跳舞", "延时摄影，云在天空中飘", "快动作，汽车驶过", "循环，火焰跳动", "镜头不动，猫转头"])
def test_settings_hint_is_within_the_target_models_rules(spec, text):
    """The hint suggests only settings the model takes, each one its spec accepts; a still camera suggests the
    model's own guidance, and nothing to a model that takes none."""
    result = RuleRefiner(spec).refine(text)
    hint = result.settings_hint
    if result.tags == ["static_camera"] and spec.guidance is None:
        assert hint is None
        return
    assert hint is not None, (text, result.tags)
    fields = hint.model_dump(exclude_none=True, exclude={"reason"})
    assert fields and hint.reason
    request = GenerationRequest(image="x.png", prompt="x", model="m", **fields)
    spec.check(request, "m")  # raises if the hint asked for something this model cannot do
    if spec.motion_fps is None:
        assert hint.motion_fps is None
    if "slow_motion" in result.tags:
        assert hint.num_frames >= spec.frames.default and hint.fps < spec.fps.default
