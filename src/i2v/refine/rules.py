"""Offline rule-based refiner: raw Chinese/English/mixed text -> English prompt + motion tags.

It is the embedded default and the LLM refiner's fallback, so it needs no network, never raises on ordinary
input and answers in a few milliseconds. The method is deliberately simple and predictable:

1. Split the text into clauses at punctuation.
2. Find camera language (pans, zooms, slow motion, ...) with regular expressions and cut it out of the
   clause, so that "镜头向左" is read as a camera move and not as the subject moving left.
3. Read what is left. An all-English clause is kept as the user wrote it (only tidied): the video model
   reads English, and rewriting words we do not know would lose them. A clause with Chinese in it is
   segmented with jieba (plus our lexicon) and rebuilt as "[subject] [action] [manner] [place]". The
   curated lexicon wins where it has a word (it knows camera language and picks the video-friendly sense);
   CC-CEDICT (`dictionary.py`) translates the rest, as a noun or a verb by the word's place in the clause,
   and `notes` lists what it translated. Only words neither knows are left out, and `dropped` names them.
4. Append the camera phrases: "..., camera panning to the left, slow motion."

That is the "short" form, for models whose text encoder reads a few dozen tokens. A model whose spec asks for the
"detailed" form (a text encoder that reads hundreds of tokens and follows 80-120-word prompts) gets the same reading written out as
a structured paragraph: the subject and its action, the manner and tempo of the motion (from the tempo tags), the
camera (from the camera tags; "the camera stays still" when none was asked for), then a sentence keeping the look
of the image. Same tags, same content words, within the spec's word budget.

Nothing is added that the user did not say: no weather, light, style or objects.
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from i2v.paths import data_dir
from i2v.refine import dictionary
from i2v.refine.base import (
    CAMERA_TAGS,
    TEMPO_TAGS,
    RefinedPrompt,
    not_understood,
    settings_hint_for,
)

if TYPE_CHECKING:
    from PIL import Image

    from i2v.models.spec import ModelSpec

GENERIC_PROMPT = "The scene comes alive with subtle natural motion."


# --------------------------------------------------------------------------------------------------
# Lexicon
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Noun:
    """An English noun with what we need to put an article, a plural and a pronoun around it."""

    en: str
    kind: str = "count"  # count | plural | mass | the | pron
    pos: str = "its"  # possessive pronoun for "turning {pos} head"
    plural: str = ""
    one: str = ""  # singular of a plural-kind noun ("clouds" -> "cloud") for "一片云"
    obj: str = ""  # object form of a pronoun ("she" -> "her")
    part: bool = False  # a body part or garment: "女孩头发" means the girl's hair

    def plural_form(self) -> str:
        if self.plural:
            return self.plural
        if self.kind in ("plural", "mass", "the", "pron"):
            return self.en
        return _pluralize(self.en)


@dataclass(frozen=True)
class Verb:
    """An action as an English -ing phrase; `trans` places an object ("looking at {obj}")."""

    ing: str
    trans: str = ""
    still: bool = False  # the action is keeping still: "motionless" must leave the negative prompt


def N(en: str, kind: str = "count", pos: str = "its", **extra: Any) -> Noun:
    return Noun(en, kind, pos, **extra)


def V(ing: str, trans: str = "", still: bool = False) -> Verb:
    return Verb(ing, trans, still)


def _her(en: str, **extra: Any) -> Noun:
    return Noun(en, pos="her", **extra)


def _his(en: str, **extra: Any) -> Noun:
    return Noun(en, pos="his", **extra)


def _their(en: str, **extra: Any) -> Noun:
    return Noun(en, pos="their", **extra)


PEOPLE: dict[str, Noun] = {
    "女孩": _her("girl"), "女生": _her("girl"), "姑娘": _her("girl"), "少女": _her("young girl"),
    "小女孩": _her("little girl"), "女孩子": _her("girl"),
    "男孩": _his("boy"), "男生": _his("boy"), "少年": _his("boy"), "小男孩": _his("little boy"), "男孩子": _his("boy"),
    "男人": _his("man", plural="men"), "男子": _his("man", plural="men"), "女人": _her("woman", plural="women"),
    "女子": _her("woman", plural="women"), "女士": _her("lady"), "先生": _his("gentleman", plural="gentlemen"),
    "孩子": _their("child", plural="children"), "小孩": _their("child", plural="children"),
    "儿童": _their("child", plural="children"), "小朋友": _their("child", plural="children"),
    "孩子们": N("children", "plural", "their"), "婴儿": _their("baby"), "宝宝": _their("baby"),
    "老人": _their("elderly person", plural="elderly people"), "老奶奶": _her("old woman", plural="old women"),
    "老爷爷": _his("old man", plural="old men"), "奶奶": _her("grandmother"), "爷爷": _his("grandfather"),
    "妈妈": _her("mother"), "爸爸": _his("father"),
    "人": _their("person", plural="people"), "人物": _their("person", plural="people"),
    "人们": N("people", "plural", "their"), "行人": N("pedestrians", "plural", "their"), "人群": _their("crowd"),
    "宇航员": _their("astronaut"), "航天员": _their("astronaut"), "舞者": _their("dancer"), "士兵": _their("soldier"),
    "骑士": _his("knight"), "武士": _his("samurai", plural="samurai"), "忍者": _their("ninja"), "警察": _their("police officer"),
    "医生": _their("doctor"), "厨师": _their("chef"), "老师": _their("teacher"), "学生": _their("student"),
    "新娘": _her("bride"), "新郎": _his("groom"), "公主": _her("princess"), "王子": _his("prince"),
    "女王": _her("queen"), "国王": _his("king"), "模特": _their("model"), "歌手": _their("singer"),
    "运动员": _their("athlete"), "情侣": _their("couple"), "朋友们": N("friends", "plural", "their"),
    "机器人": N("robot"), "小丑": _their("clown"), "渔夫": _his("fisherman", plural="fishermen"),
}

ANIMALS: dict[str, Noun] = {
    "猫": N("cat"), "猫咪": N("cat"), "小猫": N("kitten"), "狗": N("dog"), "小狗": N("puppy"), "狗狗": N("dog"),
    "鸟": N("bird"), "小鸟": N("little bird"), "鸟儿": N("bird"), "鱼": N("fish", plural="fish"),
    "金鱼": N("goldfish", plural="goldfish"), "马": N("horse"), "兔子": N("rabbit"), "小兔子": N("little rabbit"),
    "老虎": N("tiger"), "狮子": N("lion"), "熊": N("bear"), "熊猫": N("panda"), "大象": N("elephant"),
    "猴子": N("monkey"), "鹿": N("deer", plural="deer"), "狐狸": N("fox"), "狼": N("wolf", plural="wolves"),
    "牛": N("cow"), "羊": N("sheep", plural="sheep"), "猪": N("pig"), "鸡": N("chicken"), "鸭子": N("duck"),
    "天鹅": N("swan"), "老鹰": N("eagle"), "鹰": N("eagle"), "海鸥": N("seagull"), "鸽子": N("pigeon"),
    "蝴蝶": N("butterfly"), "蜜蜂": N("bee"), "龙": N("dragon"), "海豚": N("dolphin"), "鲸鱼": N("whale"),
    "鲸": N("whale"), "乌龟": N("turtle"), "海龟": N("sea turtle"), "蛇": N("snake"), "松鼠": N("squirrel"),
    "企鹅": N("penguin"), "水母": N("jellyfish", plural="jellyfish"), "青蛙": N("frog"), "恐龙": N("dinosaur"),
    "仓鼠": N("hamster"), "鹦鹉": N("parrot"), "孔雀": N("peacock"), "猫头鹰": N("owl"), "萤火虫": N("firefly"),
    "锦鲤": N("koi fish", plural="koi fish"), "独角兽": N("unicorn"), "柯基": N("corgi"), "蜂鸟": N("hummingbird"),
}

OBJECTS: dict[str, Noun] = {
    "咖啡杯": N("coffee cup"), "咖啡": N("coffee", "mass"), "杯子": N("cup"), "茶杯": N("teacup"),
    "茶": N("tea", "mass"), "水杯": N("glass of water", plural="glasses of water"), "火箭": N("rocket"),
    "花": N("flower"), "花朵": N("flower"), "鲜花": N("flowers", "plural", one="flower"), "玫瑰": N("rose"),
    "向日葵": N("sunflower"), "荷花": N("lotus flower"), "樱花": N("cherry blossoms", "plural", one="cherry blossom"),
    "花瓣": N("petals", "plural", one="petal"), "树": N("tree"), "大树": N("big tree"), "树木": N("trees", "plural", one="tree"),
    "树叶": N("leaves", "plural", one="leaf"), "叶子": N("leaves", "plural", one="leaf"),
    "树枝": N("branches", "plural", one="branch"), "柳树": N("willow tree"), "椰子树": N("palm tree"), "竹子": N("bamboo", "mass"),
    "汽车": N("car"), "车": N("car"), "轿车": N("car"), "跑车": N("sports car"), "船": N("boat"), "小船": N("small boat"),
    "帆船": N("sailboat"), "飞机": N("airplane"), "火车": N("train"), "自行车": N("bicycle"), "摩托车": N("motorcycle"),
    "旗帜": N("flag"), "旗子": N("flag"), "国旗": N("national flag"), "红旗": N("red flag"), "旗": N("flag"),
    "气球": N("balloon"), "热气球": N("hot air balloon"), "风车": N("windmill"), "风筝": N("kite"), "灯笼": N("lantern"),
    "蜡烛": N("candle"), "烛光": N("candlelight", "mass"), "钟": N("clock"), "时钟": N("clock"), "书": N("book"),
    "吉他": N("guitar"), "钢琴": N("piano"), "伞": N("umbrella"), "雨伞": N("umbrella"),
    "窗帘": N("curtains", "plural", one="curtain"),
    "窗户": N("window"), "门": N("door"), "房子": N("house"), "桥": N("bridge"), "灯塔": N("lighthouse"),
    "城堡": N("castle"), "秋千": N("swing"), "风扇": N("fan"), "烟花": N("fireworks", "plural", one="firework"),
    "灯光": N("lights", "plural", one="light"), "霓虹灯": N("neon lights", "plural", one="neon light"), "雕像": N("statue"),
    "画": N("painting"), "球": N("ball"), "足球": N("soccer ball"), "篮球": N("basketball"), "玩具": N("toy"),
    "蛋糕": N("cake"), "面条": N("noodles", "plural", one="noodle"), "酒杯": N("wine glass"), "瓶子": N("bottle"),
    "纸飞机": N("paper airplane"), "列车": N("train"), "卫星": N("satellite"), "飞船": N("spaceship"), "宇宙飞船": N("spaceship"),
}

NATURE: dict[str, Noun] = {
    "海浪": N("waves", "plural", one="wave"), "浪": N("waves", "plural", one="wave"), "浪花": N("waves", "plural", one="wave"),
    "波浪": N("waves", "plural", one="wave"), "海水": N("seawater", "mass"), "海": N("sea", "the"), "大海": N("sea", "the"),
    "海洋": N("ocean", "the"), "海面": N("sea surface", "the"), "沙滩": N("sandy beach"), "海滩": N("beach"),
    "云": N("clouds", "plural", one="cloud"), "云朵": N("clouds", "plural", one="cloud"),
    "云彩": N("clouds", "plural", one="cloud"),
    "白云": N("white clouds", "plural", one="white cloud"), "乌云": N("dark clouds", "plural", one="dark cloud"),
    "云海": N("sea of clouds", "the"), "雨": N("rain", "mass"), "雨滴": N("raindrops", "plural", one="raindrop"),
    "雨水": N("rainwater", "mass"), "雪": N("snow", "mass"), "雪花": N("snowflakes", "plural", one="snowflake"),
    "落叶": N("falling leaves", "plural", one="falling leaf"), "火焰": N("flames", "plural", one="flame"),
    "火苗": N("flames", "plural", one="flame"), "火": N("fire", "mass"), "篝火": N("campfire"), "瀑布": N("waterfall"),
    "河": N("river"), "河流": N("river"), "小河": N("small river"), "河水": N("river water", "mass"), "江": N("river"),
    "溪流": N("stream"), "小溪": N("stream"), "湖": N("lake"), "湖水": N("lake water", "mass"), "湖面": N("lake surface", "the"),
    "水": N("water", "mass"), "水面": N("water surface", "the"), "烟": N("smoke", "mass"), "烟雾": N("smoke", "mass"),
    "蒸汽": N("steam", "mass"), "热气": N("steam", "mass"), "雾": N("fog", "mass"), "雾气": N("mist", "mass"),
    "星空": N("starry sky", "the"), "星星": N("stars", "plural", one="star"), "银河": N("Milky Way", "the"),
    "月亮": N("moon", "the"), "太阳": N("sun", "the"), "夕阳": N("setting sun", "the"), "日落": N("sunset", "the"),
    "日出": N("sunrise", "the"), "天空": N("sky", "the"), "天": N("sky", "the"), "草": N("grass", "mass"),
    "草地": N("grass", "mass"), "小草": N("grass", "mass"), "草原": N("grassland", "the"), "麦田": N("wheat field"),
    "山": N("mountain"), "高山": N("mountain"), "群山": N("mountains", "plural", one="mountain"),
    "山脉": N("mountain range"), "城市": N("city", "the"), "街道": N("street"), "街": N("street"), "马路": N("road"),
    "森林": N("forest"), "树林": N("woods", "plural"), "竹林": N("bamboo forest"), "沙漠": N("desert"),
    "风": N("wind", "the"), "微风": N("breeze", "the"), "闪电": N("lightning", "mass"), "极光": N("aurora", "the"),
    "彩虹": N("rainbow"), "火山": N("volcano"), "岩浆": N("lava", "mass"), "冰": N("ice", "mass"), "冰川": N("glacier"),
    "阳光": N("sunlight", "mass"), "月光": N("moonlight", "mass"), "光": N("light", "mass"), "岸边": N("shore", "the"),
    "岩石": N("rock"), "石头": N("stone"), "沙子": N("sand", "mass"), "泡泡": N("bubbles", "plural", one="bubble"),
    "气泡": N("bubbles", "plural", one="bubble"), "灰尘": N("dust", "mass"), "尘土": N("dust", "mass"),
    "湖泊": N("lake"), "池塘": N("pond"), "广场": N("square"), "公园": N("park"), "花园": N("garden"),
    "田野": N("field"), "房间": N("room"), "桌子": N("table"), "椅子": N("chair"), "沙发": N("sofa"),
    "夜景": N("night view", "the"), "壁炉": N("fireplace"),
}

BODY: dict[str, Noun] = {
    "头发": N("hair", "mass", part=True), "长发": N("long hair", "mass", part=True), "秀发": N("hair", "mass", part=True),
    "眼睛": N("eyes", "plural", one="eye", part=True), "尾巴": N("tail", part=True),
    "翅膀": N("wings", "plural", one="wing", part=True), "手": N("hand", part=True), "双手": N("hands", "plural", part=True),
    "脸": N("face", part=True), "头": N("head", part=True), "耳朵": N("ears", "plural", one="ear", part=True),
    "嘴": N("mouth", part=True), "嘴巴": N("mouth", part=True), "裙子": N("dress", part=True),
    "裙摆": N("skirt", part=True), "衣服": N("clothes", "plural", part=True), "围巾": N("scarf", part=True),
    "帽子": N("hat", part=True), "披风": N("cape", part=True), "鬃毛": N("mane", part=True), "毛发": N("fur", "mass", part=True),
}

#: Words that point at what is in the picture rather than naming it.
REFERENCES: dict[str, Noun] = {
    "画面": N("scene", "the"), "场景": N("scene", "the"), "图片": N("picture", "the"), "照片": N("photo", "the"),
    "图像": N("image", "the"), "镜头": N("camera", "the"),
    "它": N("it", "pron", "its", obj="it"), "他": N("he", "pron", "his", obj="him"), "她": N("she", "pron", "her", obj="her"),
    "它们": N("they", "pron", "their", obj="them"), "他们": N("they", "pron", "their", obj="them"),
    "她们": N("they", "pron", "their", obj="them"),
}

ACTIONS: dict[str, Verb] = {
    "走": V("walking"), "走路": V("walking"), "行走": V("walking"), "散步": V("strolling"), "漫步": V("strolling"),
    "走过": V("walking", "walking across {obj}"), "走向": V("walking", "walking toward {obj}"),
    "跑": V("running"), "奔跑": V("running"), "跑步": V("running"), "跑过": V("running", "running across {obj}"),
    "跑向": V("running", "running toward {obj}"), "奔腾": V("galloping"),
    "跳舞": V("dancing"), "起舞": V("dancing"), "舞蹈": V("dancing"), "翩翩起舞": V("dancing gracefully"),
    "挥手": V("waving"), "招手": V("waving"), "挥舞": V("waving", "waving {obj}"),
    "转头": V("turning {pos} head"), "扭头": V("turning {pos} head"), "回头": V("looking back"),
    "转身": V("turning around"), "眨眼": V("blinking"), "眨眼睛": V("blinking"), "微笑": V("smiling"),
    "笑": V("smiling"), "大笑": V("laughing"), "笑着": V("smiling"), "点头": V("nodding"), "摇头": V("shaking {pos} head"),
    "抬头": V("looking up"), "低头": V("looking down"), "歪头": V("tilting {pos} head"),
    "飞": V("flying"), "飞翔": V("flying"), "飞行": V("flying"), "飞过": V("flying", "flying over {obj}"),
    "飞向": V("flying", "flying toward {obj}"), "飞舞": V("fluttering"), "盘旋": V("circling"), "俯冲": V("diving"),
    "展翅": V("spreading {pos} wings"), "扇动翅膀": V("flapping {pos} wings"), "拍打翅膀": V("flapping {pos} wings"),
    "扇动": V("flapping", "flapping {obj}"), "摇尾巴": V("wagging {pos} tail"),
    "游": V("swimming"), "游泳": V("swimming"), "游动": V("swimming"), "潜水": V("diving"),
    "摇摆": V("swaying"), "摆动": V("swaying"), "摇曳": V("swaying"), "摇晃": V("swaying"), "晃动": V("swaying"),
    "随风摇摆": V("swaying in the wind"), "抖动": V("shaking"), "颤抖": V("trembling"),
    "流动": V("flowing"), "流": V("flowing"), "流淌": V("flowing"), "涌动": V("surging"), "翻滚": V("rolling"),
    "波动": V("rippling"), "荡漾": V("rippling"), "泛起涟漪": V("rippling"), "起伏": V("rising and falling"),
    "飘": V("drifting"), "飘动": V("drifting"), "飘荡": V("drifting"), "飘浮": V("floating"), "漂浮": V("floating"),
    "飘扬": V("fluttering"), "飘落": V("drifting down"), "飞扬": V("flying"),
    "落下": V("falling"), "下落": V("falling"), "掉落": V("falling"), "坠落": V("falling"), "落": V("falling"),
    "掉": V("falling"), "滴": V("dripping"), "滴落": V("dripping"), "溅起": V("splashing"), "溅": V("splashing"),
    "燃烧": V("burning"), "熊熊燃烧": V("burning fiercely"), "跳动": V("flickering"), "闪烁": V("twinkling"),
    "闪耀": V("shimmering"), "闪闪发光": V("sparkling"), "发光": V("glowing"), "亮起": V("lighting up"),
    "升空": V("lifting off"), "起飞": V("taking off"), "发射": V("launching"), "降落": V("landing"),
    "升起": V("rising"), "上升": V("rising"), "下降": V("descending"), "冉冉升起": V("slowly rising"),
    "冒着热气": V("steaming"), "冒热气": V("steaming"), "冒着蒸汽": V("steaming"), "冒烟": V("giving off smoke"),
    "冒": V("giving off", "giving off {obj}"), "冒出": V("giving off", "giving off {obj}"),
    "拍打": V("crashing", "crashing onto {obj}"), "冲刷": V("washing", "washing over {obj}"),
    "拍岸": V("crashing onto the shore"),
    "动": V("moving"), "移动": V("moving"), "动起来": V("moving"), "活动": V("moving"), "运动": V("moving"),
    "吹": V("blowing", "blowing {obj}"), "吹动": V("blowing", "blowing {obj}"), "吹拂": V("blowing", "blowing through {obj}"),
    "旋转": V("spinning"), "转圈": V("spinning around"), "转动": V("turning"), "滚动": V("rolling"), "转": V("turning"),
    "跳": V("jumping"), "跳跃": V("jumping"), "蹦": V("hopping"), "弹跳": V("bouncing"), "跳起来": V("jumping up"),
    "坐": V("sitting"), "坐着": V("sitting"), "站": V("standing"), "站着": V("standing"), "躺": V("lying"),
    "躺着": V("lying"), "睡觉": V("sleeping"), "睡": V("sleeping"), "趴着": V("lying down"),
    "看": V("looking", "looking at {obj}"), "看着": V("looking", "looking at {obj}"), "望": V("gazing", "gazing at {obj}"),
    "望着": V("gazing", "gazing at {obj}"), "注视": V("gazing", "gazing at {obj}"), "凝视": V("gazing", "gazing at {obj}"),
    "看向": V("looking", "looking toward {obj}"), "张望": V("looking around"), "环顾": V("looking around"),
    "说话": V("talking"), "唱歌": V("singing"), "吃": V("eating", "eating {obj}"), "喝": V("drinking", "drinking {obj}"),
    "吃东西": V("eating"), "喝水": V("drinking water"), "弹": V("playing", "playing {obj}"), "弹吉他": V("playing the guitar"),
    "弹钢琴": V("playing the piano"), "拿着": V("holding", "holding {obj}"), "握着": V("holding", "holding {obj}"),
    "举着": V("holding up", "holding up {obj}"), "抱着": V("holding", "holding {obj}"), "拥抱": V("hugging", "hugging {obj}"),
    "骑": V("riding", "riding {obj}"), "骑着": V("riding", "riding {obj}"), "追": V("chasing", "chasing {obj}"),
    "追逐": V("chasing", "chasing {obj}"), "玩": V("playing", "playing with {obj}"), "玩耍": V("playing"),
    "哭": V("crying"), "哭泣": V("crying"), "流泪": V("shedding tears"), "呼吸": V("breathing"), "打哈欠": V("yawning"),
    "伸懒腰": V("stretching"), "伸展": V("stretching"), "亲吻": V("kissing", "kissing {obj}"), "握手": V("shaking hands"),
    "鞠躬": V("bowing"), "鼓掌": V("clapping"), "拍手": V("clapping"), "打字": V("typing"), "写字": V("writing"),
    "看书": V("reading a book"), "读书": V("reading a book"), "做饭": V("cooking"), "倒": V("pouring", "pouring {obj}"),
    "喷": V("spraying", "spraying {obj}"), "喷发": V("erupting"), "爆炸": V("exploding"), "爬": V("climbing", "climbing {obj}"),
    "攀爬": V("climbing", "climbing {obj}"), "爬行": V("crawling"), "滑行": V("gliding"), "滑翔": V("gliding"),
    "滑雪": V("skiing"), "冲浪": V("surfing"), "行驶": V("driving"), "开车": V("driving"), "航行": V("sailing"),
    "划船": V("rowing a boat"), "钓鱼": V("fishing"), "绽放": V("blooming"), "盛开": V("blooming"), "开花": V("blooming"),
    "生长": V("growing"), "融化": V("melting"), "结冰": V("freezing"), "穿过": V("passing", "passing through {obj}"),
    "经过": V("passing", "passing by {obj}"), "靠近": V("approaching", "approaching {obj}"), "离开": V("leaving"),
    "出现": V("appearing"), "消失": V("disappearing"), "打开": V("opening", "opening {obj}"), "关上": V("closing", "closing {obj}"),
    "舔": V("licking", "licking {obj}"), "咬": V("biting", "biting {obj}"), "叫": V("barking"),
    "奔向": V("running", "running toward {obj}"),
    "手持": V("holding", "holding {obj}"), "环绕": V("surrounding", "surrounding {obj}"),
    "围绕": V("surrounding", "surrounding {obj}"), "绕着": V("circling", "circling {obj}"), "绕": V("circling", "circling {obj}"),
    "摇动": V("swaying"), "摇": V("swaying"), "走来": V("walking over"), "跑来": V("running over"),
    "打太极拳": V("practicing tai chi"), "打太极": V("practicing tai chi"),
    "飞来": V("flying in"), "露出": V("revealing", "revealing {obj}"), "展示": V("showing", "showing {obj}"),
    "放大": V("growing larger"), "变大": V("growing bigger"), "缩小": V("shrinking"), "变小": V("shrinking"),
    "冒出来": V("rising"), "升腾": V("rising"), "拉开": V("pulling open", "pulling open {obj}"),
    "静止": V("staying still", still=True), "不动": V("staying still", still=True),
    "一动不动": V("staying completely still", still=True),
}

ADJECTIVES: dict[str, str] = {
    "红": "red", "红色": "red", "橙色": "orange", "黄": "yellow", "黄色": "yellow", "绿": "green", "绿色": "green",
    "蓝": "blue", "蓝色": "blue", "紫": "purple", "紫色": "purple", "白": "white", "白色": "white", "黑": "black",
    "黑色": "black", "灰色": "gray", "金色": "golden", "金黄色": "golden", "银色": "silver", "粉色": "pink",
    "粉红色": "pink", "棕色": "brown", "彩色": "colorful", "大": "big", "巨大": "huge", "小": "small", "小小": "tiny",
    "可爱": "cute", "美丽": "beautiful", "漂亮": "beautiful", "年轻": "young", "古老": "ancient", "老": "old",
    "毛茸茸": "fluffy", "蓬松": "fluffy", "高大": "tall", "长": "long", "短": "short", "安静": "quiet", "平静": "calm",
    "明亮": "bright", "黑暗": "dark", "热": "hot", "冷": "cold", "湿": "wet", "干枯": "dry", "透明": "transparent",
    "熊熊": "blazing", "汹涌": "rough", "巨型": "giant", "复古": "vintage", "金属": "metal", "木": "wooden", "木头": "wooden",
    "波光粼粼": "glistening",
}

MANNER: dict[str, str] = {
    "慢慢": "slowly", "慢慢地": "slowly", "缓缓": "slowly", "缓缓地": "slowly", "缓慢": "slowly", "缓慢地": "slowly",
    "徐徐": "slowly", "慢": "slowly", "轻轻": "gently", "轻轻地": "gently", "轻柔": "gently", "轻柔地": "gently",
    "微微": "slightly", "轻微": "slightly", "稍微": "slightly", "略微": "slightly", "快速": "quickly", "快速地": "quickly",
    "迅速": "quickly", "迅速地": "quickly", "飞快": "quickly", "飞快地": "quickly", "快": "quickly", "急速": "rapidly",
    "高速": "at high speed", "剧烈": "violently", "剧烈地": "violently", "猛烈": "violently", "猛烈地": "violently",
    "激烈": "violently", "疯狂": "wildly", "疯狂地": "wildly", "温柔": "softly", "温柔地": "softly", "优雅": "gracefully",
    "优雅地": "gracefully", "自然": "naturally", "自然地": "naturally", "不停": "continuously", "不停地": "continuously",
    "不断": "continuously", "不断地": "continuously", "持续": "continuously", "欢快": "happily", "欢快地": "happily",
    "开心": "happily", "开心地": "happily", "快乐": "happily", "快乐地": "happily", "平稳": "smoothly", "平稳地": "smoothly",
    "顺滑": "smoothly", "流畅": "smoothly", "逐渐": "gradually", "渐渐": "gradually", "渐渐地": "gradually",
    "静静": "still", "静静地": "still", "悠闲": "leisurely", "悠闲地": "leisurely", "用力": "hard", "好奇": "curiously",
    "好奇地": "curiously", "害羞": "shyly", "害羞地": "shyly",
}
#: Lexicon senses that fit some subjects only (waves crash onto a beach, flames flicker): with another subject
#: the dictionary's sense is used ("a cat patting a ball", "a heart throbbing"). Keyed by the subject's head noun.
SUBJECT_SENSES: dict[str, frozenset[str]] = {
    "拍打": frozenset({"waves", "wave", "sea", "ocean", "seawater", "water", "surface", "rain", "raindrops", "rainwater"}),
    "跳动": frozenset({"flames", "flame", "fire", "campfire", "candle", "candlelight", "light", "lights"}),
}

#: Manner words that ask for stillness: "motionless, static" must then leave the negative prompt.
STILL_MANNERS = frozenset({"still"})

DIRECTIONS: dict[str, str] = {
    "向左": "to the left", "往左": "to the left", "朝左": "to the left", "左边": "to the left", "左": "to the left",
    "向右": "to the right", "往右": "to the right", "朝右": "to the right", "右边": "to the right", "右": "to the right",
    "向上": "upward", "往上": "upward", "朝上": "upward", "向下": "downward", "往下": "downward", "朝下": "downward",
    "向前": "forward", "往前": "forward", "向后": "backward", "往后": "backward",
    "过来": "toward the camera", "向镜头": "toward the camera", "朝镜头": "toward the camera", "朝着镜头": "toward the camera",
    "过去": "away", "远去": "away into the distance", "下来": "down", "下去": "down", "上来": "up", "上去": "up",
    "出来": "out", "进来": "in", "来回": "back and forth", "左右": "from side to side", "上下": "up and down",
    "四处": "around", "到处": "around", "一圈": "in a circle", "绕圈": "in circles",
}
#: A bare direction character only means a direction after 向/往/朝 ("向左"); after a noun it is a place (树上).
DIR_CHARS: dict[str, str] = {"左": "to the left", "右": "to the right", "上": "upward", "下": "downward",
                             "前": "forward", "后": "backward"}

LOCATIVES: dict[str, str] = {
    "中": "in", "里": "in", "里面": "in", "内": "in", "之中": "in", "上": "on", "上面": "on", "之上": "above",
    "下": "under", "下面": "under", "底下": "under", "之下": "under", "边": "by", "旁": "by", "旁边": "beside",
    "边上": "beside", "附近": "near", "前": "in front of", "前面": "in front of", "后": "behind", "后面": "behind",
    "周围": "around", "外": "outside", "外面": "outside", "上方": "above", "下方": "below", "顶上": "on top of",
    "中央": "in the middle of", "中间": "in the middle of", "正中": "in the middle of", "当中": "in the middle of",
    "之间": "between", "对面": "across from", "两旁": "on both sides of", "两侧": "on both sides of",
    "两边": "on both sides of", "四周": "all around", "深处": "deep in", "尽头": "at the end of",
    "顶端": "at the top of", "顶部": "at the top of", "底部": "at the bottom of",
}

ENVIRONMENTS: dict[str, str] = {
    "雨中": "in the rain", "雪中": "in the snow", "雪地里": "in the snow", "雪地上": "on the snow", "风中": "in the wind",
    "随风": "in the wind", "水中": "in the water", "水里": "in the water", "空中": "in the air", "半空中": "in midair",
    "天空中": "in the sky", "天上": "in the sky", "海边": "by the sea", "海里": "in the sea", "海中": "in the sea",
    "河边": "by the river", "湖边": "by the lake", "湖上": "on the lake", "窗边": "by the window", "窗前": "by the window",
    "街上": "on the street", "路上": "on the road", "草地上": "on the grass", "森林里": "in the forest",
    "森林中": "in the forest", "城市里": "in the city", "房间里": "in the room", "室内": "indoors", "户外": "outdoors",
    "夜晚": "at night", "晚上": "at night", "夜里": "at night", "夜间": "at night", "深夜": "late at night",
    "黄昏": "at dusk", "傍晚": "in the evening", "清晨": "in the early morning", "早晨": "in the morning",
    "白天": "during the day", "日落时": "at sunset", "夕阳下": "at sunset", "日出时": "at sunrise",
    "阳光下": "in the sunlight", "月光下": "in the moonlight", "星空下": "under the starry sky", "灯光下": "under the lights",
    "远处": "in the distance", "冬天": "in winter", "冬日": "in winter", "夏天": "in summer", "秋天": "in autumn",
    "春天": "in spring", "水下": "underwater", "太空": "in space", "太空中": "in space", "宇宙中": "in space",
    "月球上": "on the moon", "舞台上": "on stage", "镜头前": "in front of the camera", "窗外": "outside the window",
}

#: Whole scenes in one verb: "下雨" has no subject to hang on.
EVENTS: dict[str, str] = {
    "下雨": "rain falling", "下着雨": "rain falling", "下雪": "snow falling", "下着雪": "snow falling",
    "刮风": "wind blowing", "起风": "wind picking up", "打雷": "thunder rumbling",
}

#: Grammar words: they shape the sentence but are not translated.
TOWARD = frozenset({"向", "往", "朝", "朝着", "向着"})
#: 在/于 place the next noun ("在雨中" -> "in the rain"); 从 makes it a source ("从树上" -> "from the tree").
AT = frozenset({"在", "于", "从"})
AND = frozenset({"和", "与", "跟", "以及", "还有", "及", "同"})
#: 用 names what the next action is done with: "用爪子拍打" -> "patting ... with a claw".
WITH = frozenset({"用"})
NEGATION = frozenset({"不", "不要", "别", "没有", "没"})
DE = frozenset({"的", "之"})
PARTICLES = frozenset({
    "地", "得", "着", "了", "过", "来", "到", "正在", "正", "一边", "然后", "接着", "之后", "并且", "并", "也", "都", "很",
    "非常", "十分", "特别", "一下", "一直", "还", "又", "再", "就", "让", "使", "把", "被", "请", "给", "将", "要", "想",
    "会", "能", "可以", "有", "是", "吧", "呢", "啊", "呀", "哦", "嗯", "啦", "起来", "开始", "视频", "动画", "效果",
    "生成", "制作", "一段", "帮我", "帮", "我", "我们", "想要", "希望", "所有", "整个",
    "个", "只", "位", "条", "匹", "辆", "艘", "朵", "棵", "片", "架", "名", "根", "把", "张", "座", "对", "颗", "盏",
    "枚", "株", "团", "缕", "阵", "面", "其", "此", "该", "而", "且", "同时", "好", "真",
    "们", "所", "像", "好像", "仿佛", "似的", "一样", "一般", "般", "整", "整片", "全", "全部", "每", "各",
})

QUANTITY_WORDS: dict[str, str] = {
    "这": "the", "那": "the", "这个": "the", "那个": "the", "这只": "the", "那只": "the", "这位": "the", "那位": "the",
    "这条": "the", "那条": "the", "这些": "the", "那些": "the", "许多": "many", "很多": "many", "好多": "many",
    "无数": "countless", "几": "several", "几个": "several", "几只": "several", "一群": "group", "成群": "group",
    "一对": "pair", "一些": "several",
}
NUMERALS: dict[str, str] = {
    "一": "one", "二": "two", "两": "two", "三": "three", "四": "four", "五": "five", "六": "six", "七": "seven",
    "八": "eight", "九": "nine", "十": "ten", "几": "several", "数": "several",
}
_CLASSIFIERS = "个只位条匹辆艘朵棵群片架头名根把杯张座对堆串阵缕团株颗盏面枚道列件块本扇间封粒排束幅首"
_QUANTITY_RE = re.compile(rf"^([一二两三四五六七八九十几数]|\d+)([{_CLASSIFIERS}])$")
_DEFINITE_RE = re.compile(rf"^[这那]([{_CLASSIFIERS}]|些)?$")


# English side: only used to categorise English words inside mixed clauses and to fill `subject`/`motion`.

EN_VERBS: dict[str, str] = {
    "walk": "walking", "run": "running", "dance": "dancing", "wave": "waving", "turn": "turning", "blink": "blinking",
    "smile": "smiling", "nod": "nodding", "fly": "flying", "swim": "swimming", "sway": "swaying", "flow": "flowing",
    "drift": "drifting", "fall": "falling", "burn": "burning", "lift": "lifting", "steam": "steaming", "crash": "crashing",
    "move": "moving", "blow": "blowing", "spin": "spinning", "jump": "jumping", "sit": "sitting", "look": "looking",
    "stand": "standing", "sleep": "sleeping", "eat": "eating", "drink": "drinking", "sing": "singing", "laugh": "laughing",
    "cry": "crying", "rotate": "rotating", "float": "floating", "shake": "shaking", "roll": "rolling", "rise": "rising",
    "glow": "glowing", "flicker": "flickering", "twinkle": "twinkling", "bloom": "blooming", "melt": "melting",
    "splash": "splashing", "ripple": "rippling", "flutter": "fluttering", "wag": "wagging", "flap": "flapping",
    "climb": "climbing", "ride": "riding", "play": "playing", "hug": "hugging", "kiss": "kissing", "talk": "talking",
    "read": "reading", "write": "writing", "cook": "cooking", "pour": "pouring", "drip": "dripping", "sail": "sailing",
    "drive": "driving", "chase": "chasing", "hold": "holding", "breathe": "breathing", "stretch": "stretching",
    "bounce": "bouncing", "dive": "diving", "glide": "gliding", "launch": "launching", "explode": "exploding",
    "erupt": "erupting", "surge": "surging", "gallop": "galloping", "stroll": "strolling", "gaze": "gazing",
    "wander": "wandering", "soar": "soaring", "hover": "hovering", "swirl": "swirling", "tremble": "trembling",
    "crawl": "crawling", "hop": "hopping", "bark": "barking", "wink": "winking", "yawn": "yawning", "rain": "raining",
    "snow": "snowing", "shimmer": "shimmering", "sparkle": "sparkling", "wash": "washing", "sweep": "sweeping",
}
EN_MANNERS = frozenset({
    "slowly", "gently", "quickly", "rapidly", "violently", "slightly", "softly", "gracefully", "smoothly", "steadily",
    "calmly", "gradually", "continuously", "happily", "naturally", "wildly", "lightly", "fast", "swiftly", "playfully",
})
EN_PREPOSITIONS = frozenset({
    "in", "on", "at", "by", "under", "near", "over", "through", "across", "along", "above", "below", "beneath",
    "inside", "into", "onto", "toward", "towards", "around", "behind", "beside", "with", "during", "against", "from",
    "underwater", "while", "as",
})
_NOT_VERBS = frozenset({
    "morning", "evening", "ceiling", "building", "thing", "ring", "king", "wing", "spring", "string", "something",
    "nothing", "everything", "anything", "painting", "clothing", "lightning", "sibling", "pudding", "wedding", "ping",
    "sing", "swing", "sling", "bring", "sting", "lighting", "setting", "sterling", "awning", "darling", "ding",
})
_DETERMINERS = frozenset({"a", "an", "the", "this", "that", "these", "those", "some", "my", "his", "her", "its",
                          "their", "our", "two", "three", "four", "five", "many", "several", "one"})


def _pluralize(word: str) -> str:
    head, _, last = word.rpartition(" ")
    irregular = {"man": "men", "woman": "women", "child": "children", "person": "people", "fish": "fish",
                 "sheep": "sheep", "deer": "deer", "mouse": "mice", "leaf": "leaves", "wolf": "wolves"}
    if last in irregular:
        plural = irregular[last]
    elif last.endswith(("s", "x", "z", "ch", "sh")):
        plural = last + "es"
    elif last.endswith("y") and last[-2:-1] not in "aeiou":
        plural = last[:-1] + "ies"
    else:
        plural = last + "s"
    return f"{head} {plural}" if head else plural


def _english_nouns() -> dict[str, str]:
    """English head nouns (singular and plural) -> possessive pronoun, from the Chinese lexicon's translations."""
    nouns: dict[str, str] = {}
    for table in (PEOPLE, ANIMALS, OBJECTS, NATURE, BODY):
        for noun in table.values():
            for form in (noun.en, noun.plural_form(), noun.one):
                if form:
                    nouns[form.split()[-1].lower()] = noun.pos
    nouns.update({"sky": "its", "people": "their", "kid": "their", "kids": "their", "lady": "her", "guy": "his",
                  "puppy": "its", "kitten": "its", "ocean": "its", "sea": "its", "city": "its", "waves": "its"})
    return nouns


EN_NOUNS = _english_nouns()
EN_VERB_FORMS: dict[str, str] = {}
for _base, _ing in EN_VERBS.items():
    EN_VERB_FORMS.update({_base: _ing, _ing: _ing, _pluralize(_base): _ing})


# --------------------------------------------------------------------------------------------------
# Camera language
# --------------------------------------------------------------------------------------------------

CAMERA_PHRASES: dict[str, str] = {
    "pan_left": "camera panning to the left", "pan_right": "camera panning to the right",
    "tilt_up": "camera tilting up", "tilt_down": "camera tilting down",
    "zoom_in": "camera zooming in", "zoom_out": "camera zooming out",
    "dolly_in": "camera pushing in", "dolly_out": "camera pulling back",
    "orbit_left": "camera orbiting to the left", "orbit_right": "camera orbiting to the right",
    "static_camera": "static camera", "handheld": "handheld camera",
    "slow_motion": "slow motion", "fast_motion": "fast motion", "timelapse": "time-lapse", "loop": "seamless loop",
}
#: Tags whose phrase takes a manner adverb ("camera slowly panning to the left").
MOVING_TAGS = frozenset(CAMERA_TAGS - {"static_camera", "handheld"})


@dataclass
class CameraHit:
    """One camera instruction found in the text."""

    tag: str | None  # None: camera language without a tag (a pan with no direction, a close-up)
    phrase: str
    start: int
    note: str = ""
    inline: bool = False  # already said in English text we keep: tag it, do not say it twice


_CAM = "(?:镜头|摄像机|摄影机|相机|机位|画面)"
_CN_MANNER = "(?:(?:慢慢|缓缓|缓慢|徐徐|轻轻|稍稍|微微|快速|迅速|急速|平稳|匀速|逐渐|渐渐|慢|快)地?)?"
_PREP = "(?:向|往|朝)"

# (pattern, kind, needs_context). A pattern that needs context only counts when the clause names the camera
# (镜头, 画面, ...) or holds nothing else: "放大" alone is a zoom, "瞳孔放大" is a pupil dilating.
_CN_CAMERA_RULES: list[tuple[str, str, bool]] = [
    (rf"{_CAM}(?:保持|始终)?(?:完全)?(?:固定不动|不动|固定|静止|不移动|不要动|不要移动|稳定)|固定(?:的)?(?:镜头|机位)"
     rf"|(?:不要|别|不)(?:移动|动|晃动)(?:的)?{_CAM}"
     r"|静止(?:的)?镜头|定镜(?:头)?|三脚架(?:拍摄)?", "static_camera", False),
    (rf"手持(?:镜头|拍摄|摄影|摄像|相机|风格|感)|{_CAM}(?:轻微)?(?:晃动|抖动)|晃动(?:的)?镜头", "handheld", False),
    (r"手持", "handheld", True),
    (r"慢动作|慢镜头|(?<!慢)慢放(?!大)|升格(?:拍摄)?|超慢速?", "slow_motion", False),
    (r"快动作|快进|快放|加速播放|倍速(?:播放)?|快镜头", "fast_motion", False),
    (r"延时摄影|延时拍摄|延时|缩时摄影|缩时", "timelapse", False),
    (r"无缝循环|循环播放|循环动画|循环", "loop", False),
    (rf"{_CAM}?{_CN_MANNER}(?:[顺逆]时针)?(?:{_PREP}?[左右])?(?:360度|三百六十度)?(?:环绕拍摄|环拍|环绕镜头)"
     rf"(?:{_PREP}?[左右])?", "orbit", False),
    (rf"{_CAM}{_CN_MANNER}(?:[顺逆]时针)?(?:{_PREP}?[左右])?(?:360度|三百六十度)?(?:环绕|围绕|绕圈|旋转|绕)"
     rf"(?:{_PREP}?[左右])?", "orbit", False),
    (rf"(?:[顺逆]时针)?(?:{_PREP}?[左右])?(?:360度|三百六十度)?环绕(?:{_PREP}?[左右])?", "orbit", True),
    (r"[顺逆]时针(?:旋转|转动)?", "orbit", True),
    (r"俯拍|俯视镜头|俯视角度|俯角", "tilt_down", False),
    (r"仰拍|仰视镜头|仰视角度|仰角", "tilt_up", False),
    (r"俯视|俯瞰", "tilt_down", True),
    (r"仰视", "tilt_up", True),
    (rf"{_CAM}?{_CN_MANNER}(?:推近|推进|推镜头|推镜|前推|慢推|向前推)", "dolly_in", False),
    (rf"{_CAM}{_CN_MANNER}(?:推向|推)", "dolly_in", False),
    (rf"{_CAM}?{_CN_MANNER}(?:拉近|变焦推近|变焦拉近|变焦放大)", "zoom_in", False),
    (rf"{_CAM}?{_CN_MANNER}(?:放大|变焦)", "zoom_in", True),
    (rf"{_CAM}?{_CN_MANNER}(?:拉远|变焦拉远)", "zoom_out", False),
    (rf"{_CAM}?{_CN_MANNER}缩小", "zoom_out", True),
    (rf"{_CAM}?{_CN_MANNER}(?:拉镜头|后拉|向后拉|拉出)", "dolly_out", False),
    (rf"{_CAM}?{_CN_MANNER}(?:拉开|后退|后移)", "dolly_out", True),
    # The camera moving in a direction: 镜头向左(平移), 镜头缓缓向上摇, 镜头移向右边.
    (rf"{_CAM}{_CN_MANNER}(?:从[左右上下前后](?:边|方)?)?{_PREP}([左右上下前后])(?:边|方)?{_CN_MANNER}"
     r"(?:平移|横移|移动|移|摇动|平摇|摇|推|拉|转)?", "direction", False),
    (rf"{_CAM}{_CN_MANNER}(?:平移|横移|移动|移|摇)(?:{_PREP}|到)([左右上下])(?:边|方)?", "direction", False),
    (rf"{_CAM}?{_CN_MANNER}(?:从[左右](?:边|方)?)?(?:{_PREP}?([左右]))?(?:边|方)?{_CN_MANNER}(?:平移|横移|平摇)"
     rf"(?:(?:{_PREP}|到)([左右])(?:边|方)?)?", "pan", False),
    (rf"{_CAM}?{_CN_MANNER}(?<![左右上下])([左右上下])(?:移|摇)(?![摆晃动左右上下])", "direction", False),
    (rf"{_CAM}(?:跟随|跟拍|跟着)|跟拍|跟随拍摄", "text:tracking shot", False),
    (r"航拍", "text:aerial shot", False),
    (r"特写(?:镜头)?", "text:close-up", False),
    (r"远景|全景", "text:wide shot", False),
    (r"第一人称视角|主观视角", "text:first-person view", False),
]
_CN_CAMERA = [(re.compile(p), kind, ctx) for p, kind, ctx in _CN_CAMERA_RULES]
_CN_CAMERA_CONTEXT = re.compile(_CAM)

_EN_MANNER_WORD = r"(?:(?:slowly|gently|smoothly|quickly|slow|smooth|gentle|quick|steadily)\s+)?"
_EN_CAMERA_RULES: list[tuple[str, str]] = [
    (r"\b(?:static|still|fixed|locked[-\s]?off|locked|stationary|steady|tripod|stable)\s+(?:camera|shot|cam|frame)\b",
     "static_camera"),
    (r"\bcamera\s+(?:is\s+|stays\s+|remains\s+|kept\s+|held\s+)?(?:completely\s+|perfectly\s+)?"
     r"(?:still|static|fixed|stationary|locked(?:[-\s]off)?|steady)\b", "static_camera"),
    (r"\b(?:no|without)\s+camera\s+(?:movement|motion|moves)\b", "static_camera"),
    (r"\bcamera\s+(?:does\s*n[o']?t|does\s+not|never)\s+move\b|\bdon'?t\s+move\s+the\s+camera\b", "static_camera"),
    (r"\blow[-\s]angle(?:\s+(?:shot|view))?\b|\bworm'?s[-\s]eye\s+view\b", "tilt_up"),
    (r"\bhigh[-\s]angle(?:\s+(?:shot|view))?\b|\bbird'?s[-\s]eye\s+view\b|\btop[-\s]down\s+(?:shot|view)\b", "tilt_down"),
    (r"\bhand[-\s]?held(?:\s+(?:camera|shot|footage|style))?\b|\bshaky[-\s]?cam(?:era)?\b", "handheld"),
    (r"\bslow[-\s]?mo(?:tion)?\b", "slow_motion"),
    (r"\bfast[-\s]?motion\b|\bsped[-\s]up\b|\bspeed(?:ed)?[-\s]up\b|\bfast[-\s]?forward(?:ed)?\b", "fast_motion"),
    (r"\btime[-\s]?lapse\b|\bhyper[-\s]?lapse\b", "timelapse"),
    (r"\b(?:seamless(?:ly)?\s+|perfect\s+|infinite\s+)?loop(?:s|ed|ing|able)?\b", "loop"),
    (rf"\b(?:camera\s+)?{_EN_MANNER_WORD}(?:pan|move|slide|glide|track|truck)(?:s|ing|ning|ned|d)?\s+"
     rf"{_EN_MANNER_WORD}from\s+(?:the\s+)?(?:left|right)\s+to\s+(?:the\s+)?(left|right)\b", "pan"),
    (rf"\b(?:camera\s+)?{_EN_MANNER_WORD}pan(?:s|ning|ned)?\s+{_EN_MANNER_WORD}"
     r"(?:to\s+(?:the\s+)?|towards?\s+(?:the\s+)?)?(left|right)(?:wards?)?\b", "pan"),
    (rf"\b(?:camera\s+)?{_EN_MANNER_WORD}(?:tilt|pan)(?:s|ing|ed|ning|ned)?\s+{_EN_MANNER_WORD}"
     r"(up|down)(?:wards?)?\b", "tilt"),
    (r"\b(left|right)(?:ward)?\s+pan\b|\btruck(?:s|ing)?\s+(?:to\s+the\s+)?(left|right)\b", "pan"),
    (r"\bcamera\s+(?:moves|moving|slides|sliding|glides|gliding|tracks|tracking)\s+(?:slowly\s+)?"
     r"(?:to\s+(?:the\s+)?)?(left|right)(?:wards?)?\b", "pan"),
    (r"\bcamera\s+pan(?:s|ning)\b|\bpanning(?:\s+shot)?\b", "pan"),
    (rf"\b(?:camera\s+)?{_EN_MANNER_WORD}zoom(?:s|ing|ed)?[-\s]+(in|into|out)\b", "zoom"),
    (rf"\b(?:camera\s+)?{_EN_MANNER_WORD}zoom(?:s|ing|ed)?\b", "zoom"),
    (rf"\b(?:camera\s+)?{_EN_MANNER_WORD}dolly(?:ing)?[-\s]+(in|forward|out|back|backward)\b", "dolly"),
    (rf"\b(?:camera\s+)?{_EN_MANNER_WORD}push(?:es|ing)?[-\s]+(in)\b", "dolly"),
    (r"\bcamera\s+(?:moves|moving|pushes|pushing|glides|gliding|creeps|creeping)\s+(?:slowly\s+)?(closer|forward|in)\b",
     "dolly"),
    (rf"\b(?:camera\s+)?{_EN_MANNER_WORD}pull(?:s|ing)?[-\s]+(back|out|away)\b", "dolly"),
    (r"\bcamera\s+(?:moves|moving|backs|backing)\s+(?:slowly\s+)?(back|away|backward)\b", "dolly"),
    (r"\b(counter-?clockwise|anti-?clockwise|clockwise)\s+orbit\b", "orbit"),
    (rf"\b(?:camera\s+)?{_EN_MANNER_WORD}orbit(?:s|ing|ed)?(?:\s+(?:to\s+the\s+)?"
     r"(left|right|counter-?clockwise|anti-?clockwise|clockwise))?\b", "orbit"),
    (r"\barc(?:ing)?\s+shot\b|\b360(?:°|\s*degrees?|-degree)?\s+(?:orbit|rotation|shot|spin)\b", "orbit"),
    (r"\bcamera\s+(?:circles|circling|rotates|rotating|revolves|revolving)\b", "orbit"),
]
_EN_CAMERA = [(re.compile(p, re.IGNORECASE), kind) for p, kind in _EN_CAMERA_RULES]
#: What may sit around camera words in a clause that is only about the camera ("a slow zoom in").
_EN_CAMERA_FILLER = frozenset({
    "camera", "the", "a", "an", "shot", "shots", "with", "and", "then", "slowly", "slow", "gently", "gentle",
    "smooth", "smoothly", "quick", "quickly", "steady", "steadily", "very", "in", "of", "style", "effect", "footage",
    "video", "movement", "move", "moves", "please", "to", "view", "cam", "is",
})

_EN_DIRECTION_TAGS = {
    ("pan", "left"): "pan_left", ("pan", "right"): "pan_right", ("tilt", "up"): "tilt_up", ("tilt", "down"): "tilt_down",
    ("zoom", "in"): "zoom_in", ("zoom", "into"): "zoom_in", ("zoom", "out"): "zoom_out", ("zoom", ""): "zoom_in",
    ("dolly", "in"): "dolly_in", ("dolly", "forward"): "dolly_in", ("dolly", "closer"): "dolly_in",
    ("dolly", "out"): "dolly_out", ("dolly", "back"): "dolly_out", ("dolly", "backward"): "dolly_out",
    ("dolly", "away"): "dolly_out", ("orbit", "left"): "orbit_left", ("orbit", "counterclockwise"): "orbit_left",
    ("orbit", "counter-clockwise"): "orbit_left", ("orbit", "anticlockwise"): "orbit_left",
    ("orbit", "anti-clockwise"): "orbit_left",
}


def _cn_camera_tag(kind: str, text: str) -> tuple[str | None, str, str]:
    """(tag, phrase, note) for one Chinese camera match."""
    if kind.startswith("text:"):
        return None, kind[5:], ""
    if kind == "orbit":
        tag = "orbit_left" if ("左" in text or "逆" in text) else "orbit_right"
        given = "左" in text or "右" in text or "时针" in text
        return tag, CAMERA_PHRASES[tag], "" if given else "orbit direction not given: assumed right"
    if kind in ("direction", "pan"):
        direction = next((c for c in reversed(text) if c in DIR_CHARS), "")
        tag = {"左": "pan_left", "右": "pan_right", "上": "tilt_up", "下": "tilt_down", "前": "dolly_in",
               "后": "dolly_out"}.get(direction)
        if tag is None:
            return None, "camera panning", "pan direction not given: no pan tag set"
        return tag, CAMERA_PHRASES[tag], ""
    return kind, CAMERA_PHRASES[kind], ""


def _en_camera_tag(kind: str, match: re.Match[str]) -> tuple[str | None, str, str]:
    """(tag, phrase, note) for one English camera match."""
    if kind in CAMERA_PHRASES:
        return kind, CAMERA_PHRASES[kind], ""
    groups = [g.lower() for g in match.groups() if g]
    direction = groups[-1] if groups else ""
    if kind == "orbit":
        tag = _EN_DIRECTION_TAGS.get((kind, direction), "orbit_right")
        return tag, CAMERA_PHRASES[tag], "" if direction else "orbit direction not given: assumed right"
    tag = _EN_DIRECTION_TAGS.get((kind, direction))
    if tag is None:
        return None, "camera panning", "pan direction not given: no pan tag set"
    return tag, CAMERA_PHRASES[tag], ""


def _manner_of(text: str) -> str:
    """The manner adverb inside a camera phrase ("缓缓向左平移" -> "slowly")."""
    low = text.lower()
    for words, adverb in (
        (("慢", "缓", "徐", "slow"), "slowly"), (("轻", "微", "gentl"), "gently"),
        (("平稳", "匀速", "smooth", "stead"), "smoothly"), (("快", "迅", "急", "quick"), "quickly"),
        (("逐渐", "渐渐"), "gradually"),
    ):
        if any(w in low for w in words):
            return adverb
    return ""


def _with_manner(tag: str | None, phrase: str, manner: str) -> str:
    if manner and tag in MOVING_TAGS and phrase.startswith("camera "):
        return f"camera {manner} {phrase[7:]}"
    return phrase


def _cut(text: str, start: int, end: int) -> str:
    """Blank out a span, keeping offsets, so later rules and the clause reader cannot see it."""
    return text[:start] + " " * (end - start) + text[end:]


def _find_cn_camera(clause: str) -> tuple[list[CameraHit], str]:
    """Camera hits in a clause with Chinese, and the clause with them blanked out."""
    hits: list[CameraHit] = []
    has_context = bool(_CN_CAMERA_CONTEXT.search(clause))
    for pattern, kind, needs_context in _CN_CAMERA:
        for match in list(pattern.finditer(clause)):
            if not match.group(0).strip():
                continue
            if needs_context and not has_context and _CJK_RE.search(_cut(clause, match.start(), match.end())):
                continue
            tag, phrase, note = _cn_camera_tag(kind, match.group(0))
            hits.append(CameraHit(tag, _with_manner(tag, phrase, _manner_of(match.group(0))), match.start(), note))
            clause = _cut(clause, match.start(), match.end())
    return hits, clause


def _find_en_camera(clause: str) -> tuple[list[CameraHit], str]:
    """Camera hits in English text, and the text with them blanked out."""
    hits: list[CameraHit] = []
    for pattern, kind in _EN_CAMERA:
        for match in list(pattern.finditer(clause)):
            if not match.group(0).strip():
                continue
            tag, phrase, note = _en_camera_tag(kind, match)
            hits.append(CameraHit(tag, phrase, match.start(), note))
            clause = _cut(clause, match.start(), match.end())
    return hits, clause



def camera_moves(text: str) -> list[CameraHit]:
    """The camera instructions `text` gives, in Chinese or English, as the refiner reads them (tempo words such as
    慢动作 are not camera moves and are left out), so other parts of i2v need no camera vocabulary of their own."""
    chinese, rest = _find_cn_camera(text)
    english, _ = _find_en_camera(rest)
    return [hit for hit in chinese + english if hit.tag is None or hit.tag in CAMERA_TAGS]

# --------------------------------------------------------------------------------------------------
# Reading Chinese clauses
# --------------------------------------------------------------------------------------------------

_CJK_RE = re.compile(
    "[\u2e80-\u2fdf\u3000-\u303f\u3040-\u30ff\u3100-\u312f\u3130-\u318f\u31a0-\u31ff\u3200-\u4dbf\u4e00-\u9fff"
    "\ua960-\ua97f\uac00-\ud7ff\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef\U00020000-\U0003ffff]"
)
_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003ffff"
#: Chinese | English word | number | any other script (kana, hangul, Cyrillic...: reported as not understood).
_RUN_RE = re.compile(
    f"([{_HAN}]+)|([A-Za-z\u00c0-\u024f][A-Za-z\u00c0-\u024f'’-]*)|(\\d+)|([^\\W\\dA-Za-z\u00c0-\u024f{_HAN}]+)"
)

_LEXICON: dict[str, tuple[str, Any]] = {}
for _category, _table in (
    ("noun", PEOPLE), ("noun", ANIMALS), ("noun", OBJECTS), ("noun", NATURE), ("noun", BODY), ("noun", REFERENCES),
    ("verb", ACTIONS), ("adj", ADJECTIVES), ("manner", MANNER), ("dir", DIRECTIONS), ("loc", LOCATIVES),
    ("env", ENVIRONMENTS), ("event", EVENTS), ("qty", QUANTITY_WORDS),
):
    for _word, _value in _table.items():
        _LEXICON.setdefault(_word, (_category, _value))
for _category, _words in (("toward", TOWARD), ("at", AT), ("and", AND), ("with", WITH), ("neg", NEGATION),
                          ("de", DE), ("ignore", PARTICLES)):
    for _word in _words:
        _LEXICON.setdefault(_word, (_category, _word))
#: Longest piece tried when splitting a word neither the lexicon nor the dictionary has whole.
_MAX_PIECE = max(6, *(len(w) for w in _LEXICON))

_jieba: Any = None
_jieba_lock = threading.Lock()


def _tokenizer() -> Any:
    """jieba with our lexicon, built once on first use (loading its dictionary takes about half a second).

    False when jieba is not installed: the lexicon's own longest-match segmentation then does the work, a little
    worse on words the lexicon lacks, so that the default refiner still works.
    """
    global _jieba
    if _jieba is None:
        with _jieba_lock:
            if _jieba is None:
                try:
                    import jieba
                except ImportError:
                    logging.getLogger(__name__).warning("jieba is not installed; segmenting Chinese by the lexicon")
                    _jieba = False
                    return _jieba
                jieba.setLogLevel(logging.WARNING)
                tokenizer = jieba.Tokenizer()
                tokenizer.tmp_dir = str(_cache_folder())
                tokenizer.initialize()
                # A high frequency makes jieba prefer our words over its own odd ones ("随风飘", "飘着雪").
                for word in _LEXICON:
                    if len(word) > 1:
                        tokenizer.add_word(word, freq=200_000)
                _jieba = tokenizer
    return _jieba


def _cache_folder() -> Path:
    """Where jieba keeps its prefix dictionary (9 MB, loaded with marshal on the next start): i2v's data folder,
    this user's only. jieba's default, the shared temp folder, lets another local user plant a `jieba.cache`
    first, which it would load without a check: a segmenter of their choosing, or a crash."""
    folder = data_dir() / "cache"
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder


def _segment(chinese: str) -> tuple[list[str], bool]:
    """jieba's words (True), or the whole run for the lexicon to split when jieba is missing (False)."""
    tokenizer = _tokenizer()
    return (tokenizer.lcut(chinese, HMM=False), True) if tokenizer else ([chinese], False)


@dataclass
class Token:
    kind: str  # a lexicon category, or num / qty / english / unknown / dict
    value: Any
    raw: str
    joined: bool = False  # a later piece of a word jieba gave whole: 面包师 = 面包 + 师 names one thing


def _lexicon_tokens(word: str, guess: bool = True) -> list[Token]:
    """Split a jieba word we lack by forward maximum matching over the lexicon and the dictionary (the
    lexicon first at equal length); what neither knows is unknown."""
    tokens: list[Token] = []
    i = 0
    while i < len(word):
        for size in range(min(_MAX_PIECE, len(word) - i), 0, -1):
            piece = word[i:i + size]
            known = _known(piece) or (_guess(piece) if guess else None)
            if known is not None:
                tokens.append(known)
                i += size
                break
        else:
            if tokens and tokens[-1].kind == "unknown":
                tokens[-1].raw += word[i]
            else:
                tokens.append(Token("unknown", None, word[i]))
            i += 1
    return tokens


def _known(word: str) -> Token | None:
    """The token for a lexicon word or a quantity ("两只", "这个", "三"), else None."""
    if word in _LEXICON:
        kind, value = _LEXICON[word]
        return Token(kind, value, word)
    quantity = _QUANTITY_RE.match(word)
    if quantity:
        number, classifier = quantity.groups()
        amount = "group" if classifier == "群" else NUMERALS.get(number, number)
        if classifier == "对":
            amount = "pair" if number in ("一", "1") else amount
        return Token("qty", amount, word)
    if _DEFINITE_RE.match(word):
        return Token("qty", "the", word)
    if word in NUMERALS:
        return Token("num", NUMERALS[word], word)
    return None


def _guess(word: str) -> Token | None:
    """A dictionary word, its role (noun or verb) still open: the reader decides from its neighbours."""
    sense = dictionary.lookup(word)
    return Token("dict", sense, word) if sense is not None else None


_GRAMMAR = frozenset({"loc", "at", "de", "ignore", "toward", "neg", "dir", "and", "with"})


def _classify(word: str, whole_word: bool) -> list[Token]:
    """Tokens for one segment: the lexicon's word; its lexicon pieces when that is plain grammar around one
    content word (坐在 = 坐 + 在, 海上 = 海 + 上: "on the sea", not the dictionary's "maritime"); else the
    dictionary's whole word (火车站 is "train station", not 火车 + 站, "a train standing"); else its pieces,
    lexicon or dictionary; unknown when a piece is unknown."""
    known = _known(word)
    if known is not None:
        return [known]
    pieces = _lexicon_tokens(word, guess=False)
    if all(p.kind != "unknown" for p in pieces) and len([p for p in pieces if p.kind not in _GRAMMAR]) <= 1:
        return pieces
    guess = _guess(word)
    if guess is not None:
        return [guess]
    pieces = _lexicon_tokens(word)
    for piece in pieces[1:]:
        piece.joined = True
    if not whole_word or all(p.kind != "unknown" for p in pieces):
        return pieces
    return [Token("unknown", None, word)]


def _merge_idioms(words: list[str]) -> list[str]:
    """Rejoin jieba's pieces of a dictionary idiom or set phrase ("夕阳" "西下" -> 夕阳西下) before splitting, and
    move a boundary our lexicon's weights pulled too far: "夜" "空中" -> "夜空" "中"."""
    words = list(words)
    for i in range(len(words) - 1):
        first, second = words[i], words[i + 1]
        if (first not in _LEXICON and len(second) > 1 and second in _LEXICON and second[1:] in _LEXICON
                and dictionary.lookup(first + second[0]) is not None):
            words[i], words[i + 1] = first + second[0], second[1:]
    merged: list[str] = []
    i = 0
    while i < len(words):
        for j in range(min(len(words), i + 4), i + 1, -1):
            span = words[i:j]
            joined = "".join(span)
            # Words all in the lexicon are understood already (and need no dictionary loaded).
            if 3 <= len(joined) <= 8 and not all(w in _LEXICON for w in span) \
                    and not any(w in _LEXICON and _LEXICON[w][0] in _GRAMMAR for w in span) \
                    and dictionary.lookup(joined) is not None:
                merged.append(joined)
                i = j
                break
        else:
            merged.append(words[i])
            i += 1
    return merged


def _tokens(clause: str) -> list[Token]:
    """Lexicon tokens for a clause: Chinese through jieba, English words grouped into runs, numbers."""
    tokens: list[Token] = []
    for match in _RUN_RE.finditer(clause):
        chinese, english, digits, other = match.groups()
        if chinese:
            words, whole = _segment(chinese)
            for word in _merge_idioms(words) if whole else words:
                for token in _classify(word, whole):
                    if token.kind == "unknown" and tokens and tokens[-1].kind == "unknown":
                        tokens[-1].raw += token.raw
                    else:
                        tokens.append(token)
        elif english:
            if tokens and tokens[-1].kind == "english" and clause[match.start() - 1:match.start()] in (" ", "-"):
                tokens[-1].raw += " " + english
            else:
                tokens.append(Token("english", None, english))
        elif digits:
            tokens.append(Token("num", digits, digits))
        elif other:
            tokens.append(Token("unknown", None, other))
    # Numerals followed by a separate classifier ("3" "只", "两" "只") become one quantity.
    merged: list[Token] = []
    for token in tokens:
        if merged and merged[-1].kind == "num" and token.raw in _CLASSIFIERS:
            merged[-1] = Token("qty", "group" if token.raw == "群" else merged[-1].value, merged[-1].raw + token.raw)
        else:
            merged.append(token)
    return [Token("qty", t.value, t.raw) if t.kind == "num" else t for t in merged]


_VAGUE_QUANTITIES = frozenset({"many", "countless", "several", "group", "pair"})


def _article(words: str) -> str:
    first = words.split()[0].lower() if words.split() else ""
    vowel = first[:1] in "aeiou" and not first.startswith(("uni", "use", "one", "eu"))
    return f"{'an' if vowel or first.startswith('hour') else 'a'} {words}"


@dataclass
class NounPhrase:
    """A noun with its quantity, adjectives, possessor and coordinated nouns, rendered on demand."""

    noun: Noun
    adjs: list[str] = field(default_factory=list)
    qty: str | None = None
    owner: NounPhrase | None = None
    others: list[NounPhrase] = field(default_factory=list)
    english: bool = False  # typed in English inside a Chinese clause: keep the words as written

    def _bare(self, plural: bool) -> str:
        word = self.noun.plural_form() if plural else self.noun.en
        return " ".join([*self.adjs, word])

    def _single(self) -> str:
        noun, qty = self.noun, self.qty
        plural = noun.kind == "plural" or qty not in (None, "one", "the")
        if self.owner is not None:
            return f"{self.owner.possessive()} {self._bare(False)}"
        if noun.kind == "pron":
            return noun.en
        if self.english and (qty is None or self._bare(False).split()[0].lower() in _DETERMINERS):
            return self._bare(False)
        if qty == "the":
            return f"the {self._bare(plural=noun.kind == 'plural')}"
        if qty in ("group", "pair"):
            return f"a {qty} of {self._bare(plural=not self.english)}"
        if plural and qty not in (None, "one"):
            return f"{qty} {self._bare(plural=not self.english)}"
        if noun.kind == "plural" and qty == "one" and noun.one:
            return _article(" ".join([*self.adjs, noun.one]))
        if noun.kind == "the":
            return f"the {self._bare(False)}"
        if noun.kind in ("plural", "mass"):
            return self._bare(False)
        return _article(self._bare(False))

    def render(self) -> str:
        return _join_and([self._single(), *(other.render() for other in self.others)])

    def definite(self) -> str:
        """The noun as something already in the picture: "toward the sky", "in the rain"."""
        if self.noun.kind == "pron":
            return self.noun.obj or self.noun.en
        if self.owner is not None or self.english or self.others or self.qty in _VAGUE_QUANTITIES:
            return self.render()
        if self.qty not in (None, "one", "the"):  # a number: "between the two trees"
            return f"the {self.qty} {self._bare(True)}"
        return f"the {self._bare(self.noun.kind == 'plural')}"

    def as_object(self) -> str:
        return self.noun.obj if self.noun.kind == "pron" and self.noun.obj else self.render()

    def possessive(self) -> str:
        if self.noun.kind == "pron":
            return self.noun.pos
        text = self.render()
        plural = self.noun.kind == "plural" or self.qty not in (None, "one", "the")
        return f"{text}'" if plural and text.endswith("s") else f"{text}'s"

    def pronoun(self) -> str:
        if self.others or self.qty not in (None, "one", "the") or self.noun.kind == "plural":
            return "their"
        return self.noun.pos


@dataclass
class VerbUse:
    verb: Verb
    manners: list[str] = field(default_factory=list)
    dirs: list[str] = field(default_factory=list)
    obj: NounPhrase | None = None
    negated: bool = False
    english: str = ""  # an English verb phrase typed inside a Chinese clause

    def render(self, pos: str) -> str:
        if self.english:
            text = self.english
        elif self.obj is not None and self.verb.trans:
            text = self.verb.trans.format(pos=pos, obj=self.obj.as_object())
        elif self.obj is not None:
            text = f"{self.verb.ing.format(pos=pos)} {self.obj.as_object()}"
        else:
            text = self.verb.ing.format(pos=pos)
        if self.negated:
            text = f"not {text}"
        return " ".join([text, *dict.fromkeys(self.manners), *dict.fromkeys(self.dirs)])


@dataclass
class Clause:
    """What one clause said, in English pieces."""

    subject: NounPhrase | None = None
    verbs: list[VerbUse] = field(default_factory=list)
    envs: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    loose: list[str] = field(default_factory=list)  # manners/directions/adjectives with no verb to attach to
    dropped: list[str] = field(default_factory=list)
    still: bool = False

    def motion(self, pos: str) -> str:
        return _join_and([verb.render(pos) for verb in self.verbs])

    def understood(self) -> bool:
        return bool(self.subject or self.verbs or self.envs or self.events or self.loose)


def _join_and(items: list[str]) -> str:
    items = [i for i in items if i]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _english_chunk(text: str) -> Token:
    """Categorise an English run inside a Chinese clause by its first word."""
    words = text.split()
    first = words[0].lower()
    if _is_verb(first):
        return Token("english_verb", " ".join([EN_VERB_FORMS.get(first, words[0]), *words[1:]]), text)
    if first in EN_MANNERS or (first.endswith("ly") and len(first) > 4):
        return Token("english_manner", text, text)
    if first in EN_PREPOSITIONS:
        # What a camera phrase left behind ("zoom in on 一只羊" -> "on") says nothing on its own.
        rest = {w.lower() for w in words} - EN_PREPOSITIONS - _EN_CAMERA_FILLER
        return Token("english_env", text, text) if rest else Token("ignore", text, text)
    return Token("english_noun", text, text)


#: A direction after a verb (洒进房间, 跃出水面): (alone, before an object).
_COMPLEMENTS: dict[str, tuple[str, str]] = {
    "出": ("out", "out of"), "进": ("in", "into"), "入": ("in", "into"), "回": ("back", "back to"),
    "起": ("up", "up"), "开": ("open", "open"), "满": ("all over", "all over"),
}
#: Grammar words after which a dictionary word is a noun: classifiers, 把/被 and aspect markers put an object next.
_BEFORE_NOUN = frozenset(_CLASSIFIERS) | {"把", "被", "将", "给", "让", "使", "请", "着", "了"}
_NOUN_PLURALS = frozenset({"people", "children", "men", "women", "clothes", "police"})


def _guessed_noun(sense: dictionary.Sense) -> Noun:
    last = sense.noun.split()[-1]
    plural = (last in _NOUN_PLURALS or " and " in sense.noun
              or (last.endswith("s") and not last.endswith(("ss", "us", "is", "ics"))))
    if sense.noun.startswith("the "):
        return Noun(sense.noun[4:], "the")
    return Noun(sense.noun, "plural" if plural else "count", "their" if sense.person or plural else "its")


def _role(sense: dictionary.Sense, before: Token | None, after: Token | None, joined: bool = False) -> str:
    """noun, verb or adj for a dictionary word, from its neighbours: after 在/这个/a verb it is a noun (a place,
    an object), after a subject, a place or a manner it is the action; else the dictionary's first sense."""
    if sense.noun and sense.primary == "noun" and after is not None and after.kind == "de" and not sense.person:
        return "adj"  # 潮湿的街道 "a damp street", 蒲公英的种子 "dandelion seeds": a modifier, not an owner
    if not sense.verb or not sense.noun:
        return "verb" if sense.verb else "noun"
    if after is not None and after.kind == "loc":
        return "noun"
    if before is None:
        return sense.primary
    if (before.kind in ("at", "toward", "qty", "adj", "de", "verb", "english_verb") or before.raw in _BEFORE_NOUN
            or (before.kind == "noun" and joined)):
        return "noun"
    if before.kind in ("noun", "english_noun", "loc", "env", "manner", "english_manner", "dir", "ignore", "neg"):
        return "verb"
    return sense.primary


def _compound(modifier: Noun, head: Noun) -> Noun:
    """Two nouns side by side are one thing named by the second: 窗户玻璃 "window glass", 熊猫宝宝 "panda baby"."""
    first = modifier.one or modifier.en if modifier.kind == "plural" else modifier.en
    return Noun(f"{first} {head.en}", head.kind, head.pos, plural=f"{first} {head.plural_form()}",
                one=f"{first} {head.one}" if head.one else "", part=head.part)


def _resolve_guesses(tokens: list[Token]) -> tuple[list[Token], list[tuple[str, str]]]:
    """Dictionary words become nouns, verbs or adjectives by their place in the clause; a direction after a verb
    joins it; nouns side by side join. Also returns what the dictionary translated, for `notes`."""
    out: list[Token] = []
    guessed: list[tuple[str, str]] = []
    for i, token in enumerate(tokens):
        before = out[-1] if out else None
        after = tokens[i + 1] if i + 1 < len(tokens) else None
        across = token.raw == "过" and after is not None and after.kind in ("noun", "dict", "qty", "adj")
        if (token.kind == "dict" and token.raw in _COMPLEMENTS or across) and before is not None \
                and before.kind == "verb":
            alone, prep = _COMPLEMENTS.get(token.raw, ("past", "past"))
            ing = before.value.ing
            out[-1] = Token("verb", Verb(f"{ing} {alone}", f"{ing} {prep} {{obj}}"), before.raw + token.raw)
            guessed.append((token.raw, prep))
            continue
        if token.kind == "dict" and token.raw in _COMPLEMENTS and before is None:
            continue  # 进 left over where a camera phrase was cut out ("镜头向前推进")
        if token.kind == "dict":
            sense = token.value
            role = _role(sense, before, after, token.joined)
            if role == "verb":
                token = Token("verb", Verb(*dictionary.verb_forms(sense.verb)), token.raw)
                guessed.append((token.raw, f"to {sense.verb}"))
            elif role == "adj":
                token = Token("adj", sense.noun, token.raw)
                guessed.append((token.raw, sense.noun))
            else:
                token = Token("noun", _guessed_noun(sense), token.raw)
                guessed.append((token.raw, sense.noun))
        if (token.kind == "noun" and before is not None and before.kind == "noun" and not token.value.part
                and "pron" not in (token.value.kind, before.value.kind)
                and not {token.raw, before.raw} & set(REFERENCES)):
            out[-1] = Token("noun", _compound(before.value, token.value), before.raw + token.raw)
            continue
        out.append(token)
    return out, guessed


class _ClauseReader:
    """Reads one clause's tokens left to right; a run-on clause ("猫转头狗跑") comes back as several."""

    def __init__(self, tokens: list[Token]) -> None:
        self.tokens, self.guessed = _resolve_guesses(
            [_english_chunk(t.raw) if t.kind == "english" else t for t in tokens])
        self.i = 0
        self.clause = Clause()
        self.done: list[Clause] = []
        self.pending_manners: list[str] = []
        self.pending_dirs: list[str] = []
        self.negate = False
        self.at = ""  # the 在/从 word waiting for its noun
        self.toward = False
        self.instrument = False  # after 用: the next noun is what the next action is done with
        self.after_de = False  # "骑自行车的男孩": the noun after 的 is who does the verbs before it
        self.last_was_verb = False

    def peek(self, offset: int = 0) -> Token | None:
        j = self.i + offset
        return self.tokens[j] if j < len(self.tokens) else None

    def starts_noun_phrase(self, offset: int = 0) -> bool:
        """A quantity or adjectives (with optional 的) followed by a noun."""
        j = self.i + offset
        while j < len(self.tokens) and self.tokens[j].kind in ("qty", "adj", "de"):
            j += 1
        return j < len(self.tokens) and self.tokens[j].kind in ("noun", "english_noun")

    def noun_phrase(self, relative: bool = False) -> NounPhrase:
        qty: str | None = None
        adjs: list[str] = []
        while (token := self.peek()) is not None and token.kind in ("qty", "adj", "de"):
            if token.kind == "qty":
                qty = token.value
            elif token.kind == "adj":
                adjs.append(token.value)
            self.i += 1
        token = self.tokens[self.i]
        self.i += 1
        if token.kind == "english_noun":
            noun = Noun(token.raw, pos=EN_NOUNS.get(token.raw.split()[-1].lower(), "its"))
            phrase = NounPhrase(noun, adjs, qty, english=True)
        else:
            phrase = NounPhrase(token.value, adjs, qty)
        while True:
            nxt = self.peek()
            if nxt is not None and nxt.kind == "de" and self.starts_noun_phrase(1) and not relative:
                self.i += 1
                owner, phrase = phrase, self.noun_phrase()
                phrase.owner = owner
                return phrase
            if nxt is not None and nxt.kind == "noun" and nxt.value.part:
                owner, phrase = phrase, self.noun_phrase()
                phrase.owner = owner
                return phrase
            if nxt is not None and nxt.kind == "and" and self.starts_noun_phrase(1):
                self.i += 1
                phrase.others.append(self.noun_phrase())
                continue
            return phrase

    def sense_for_subject(self, token: Token) -> Verb:
        """The lexicon's verb, or the dictionary's where the lexicon's sense does not fit the subject."""
        subject = self.clause.subject
        fits = SUBJECT_SENSES.get(token.raw)
        if fits is None or subject is None or subject.noun.en.split()[-1] in fits:
            return token.value
        sense = dictionary.lookup(token.raw)
        if sense is None or not sense.verb:
            return token.value
        self.guessed.append((token.raw, f"to {sense.verb}"))
        return Verb(*dictionary.verb_forms(sense.verb))

    def attach(self, bucket: str, text: str) -> None:
        """Manners and directions belong to the verb just before them, or else to the next verb."""
        if self.last_was_verb and self.clause.verbs:
            getattr(self.clause.verbs[-1], bucket).append(text)
        else:
            (self.pending_manners if bucket == "manners" else self.pending_dirs).append(text)

    def place_noun(self, phrase: NounPhrase) -> None:
        at, self.at = self.at, ""
        if self.instrument:
            self.instrument = False
            subject = self.clause.subject
            owner = subject.pronoun() if subject is not None and phrase.noun.part and phrase.owner is None else ""
            self.attach("manners", f"with {owner} {phrase._bare(False)}" if owner else f"with {phrase.as_object()}")
            return
        locative = self.peek()
        if locative is not None and locative.kind == "loc":
            self.i += 1
            self.clause.envs.append(f"{'from' if at == '从' else locative.value} {phrase.definite()}")
            return
        if self.toward:
            self.toward = False
            self.attach("dirs", f"toward {phrase.definite()}")
            return
        if at:
            self.clause.envs.append(f"{'from' if at == '从' else _default_preposition(phrase)} {phrase.definite()}")
            return
        after_de, self.after_de = self.after_de, False
        if self.starts_new_clause(after_de):
            self.finish()
        clause = self.clause
        if after_de and clause.subject is None and clause.verbs:
            clause.subject = phrase
            return
        if not clause.verbs:
            if clause.subject is None:
                clause.subject = phrase
            else:
                clause.subject.others.append(phrase)
            return
        last = clause.verbs[-1]
        if clause.subject is None and not last.verb.trans and not last.english:
            clause.subject = phrase
        elif last.obj is None:
            last.obj = phrase
        else:
            last.obj.others.append(phrase)

    def starts_new_clause(self, after_de: bool) -> bool:
        """"猫转头狗跑": a noun after a complete subject + intransitive verb starts a new clause."""
        verbs = self.clause.verbs
        return (self.clause.subject is not None and bool(verbs) and not after_de and not verbs[-1].verb.trans
                and not verbs[-1].english and verbs[-1].obj is None)

    def finish(self) -> None:
        """Close the current clause: manners and directions still waiting go to its last verb."""
        clause = self.clause
        if clause.verbs:
            clause.verbs[-1].manners += self.pending_manners
            clause.verbs[-1].dirs += self.pending_dirs
        else:
            clause.loose += self.pending_manners + self.pending_dirs
        self.pending_manners, self.pending_dirs = [], []
        self.done.append(clause)
        self.clause = Clause()

    def read(self) -> list[Clause]:
        while (token := self.peek()) is not None:
            clause, kind = self.clause, token.kind
            if kind in ("noun", "english_noun") or (kind in ("qty", "adj") and self.starts_noun_phrase()):
                self.place_noun(self.noun_phrase(relative=bool(clause.verbs) and clause.subject is None))
                self.last_was_verb = False
                continue
            self.i += 1
            if kind in ("verb", "english_verb"):
                english = token.value if kind == "english_verb" else ""
                verb = Verb(english) if english else self.sense_for_subject(token)
                use = VerbUse(verb, self.pending_manners, self.pending_dirs, negated=self.negate, english=english)
                if kind == "verb" and (token.value.still or (self.negate and token.raw in ("动", "移动"))):
                    clause.still = True
                clause.verbs.append(use)
                self.pending_manners, self.pending_dirs, self.negate = [], [], False
                self.at = ""
                self.last_was_verb = True
                continue
            if kind in ("manner", "english_manner"):
                clause.still |= token.value in STILL_MANNERS
                self.attach("manners", token.value)
            elif kind == "dir":
                self.attach("dirs", token.value)
            elif kind == "toward":
                nxt = self.peek()
                if nxt is not None and nxt.raw in DIR_CHARS:
                    self.i += 1
                    self.attach("dirs", DIR_CHARS[nxt.raw])
                else:
                    self.toward = True
                continue
            elif kind in ("env", "english_env"):
                clause.envs.append(token.value)
            elif kind == "event":
                clause.events.append(token.value)
            elif kind == "at":
                self.at = token.raw
                continue
            elif kind == "neg":
                self.negate = True
                continue
            elif kind == "adj":
                if clause.subject is not None and not clause.verbs:
                    clause.subject.adjs.append(token.value)
                else:
                    clause.loose.append(token.value)
            elif kind == "de":
                self.after_de = True
                continue
            elif kind == "with":
                self.instrument = True
            elif kind == "unknown":
                clause.dropped.append(token.raw)
            self.last_was_verb = self.last_was_verb and kind in ("ignore", "de", "loc")
        self.finish()
        return self.done


_ON_NOUNS = frozenset({"sandy beach", "beach", "grass", "street", "road", "bridge", "ice", "snow", "lake surface",
                       "water surface", "sea surface", "shore", "rock", "stone"})
#: Head words of dictionary nouns one is on, not in: "on the moon surface", "on the rooftop".
_ON_HEADS = frozenset({"surface", "roof", "rooftop", "floor", "ground", "table", "road", "street", "path", "bridge",
                       "beach", "shore", "wall", "platform", "hill", "hillside", "slope", "deck", "stage", "lawn"})


def _default_preposition(phrase: NounPhrase) -> str:
    on = phrase.noun.en in _ON_NOUNS or phrase.noun.en.split()[-1] in _ON_HEADS
    return "on" if on else "in"


# --------------------------------------------------------------------------------------------------
# English clauses
# --------------------------------------------------------------------------------------------------

_STILL_EN = re.compile(r"\b(?:still|motionless|static|frozen|stationary|unmoving|not\s+moving|no\s+motion)\b", re.I)
_STILL_CN = re.compile(r"静止|不动|一动不动|静静")


def _is_verb(word: str) -> bool:
    return word in EN_VERB_FORMS or (word.endswith("ing") and word not in _NOT_VERBS and word not in EN_NOUNS)


def _english_fields(text: str) -> tuple[str, str]:
    """(subject, motion) of an English clause: the short noun phrase before the first verb, else the first known
    noun with its article; the motion runs from the first verb."""
    words = re.findall(r"[A-Za-z][A-Za-z'-]*", text)
    lower = [w.lower() for w in words]
    verb = next((i for i, w in enumerate(lower) if _is_verb(w)), -1)
    motion = " ".join(words[verb:verb + 6]) if verb >= 0 else ""
    stops = EN_PREPOSITIONS | _EN_CAMERA_FILLER | {"of", "to"}
    if 0 < verb <= 4 and not (set(lower[:verb]) & (stops - _DETERMINERS)):
        return " ".join(words[:verb]), motion
    noun = next((i for i, w in enumerate(lower) if w in EN_NOUNS), -1)
    if noun < 0:
        return "", motion
    start = noun
    if noun >= 1 and lower[noun - 1] in _DETERMINERS:
        start = noun - 1
    elif noun >= 2 and lower[noun - 2] in _DETERMINERS and lower[noun - 1] not in stops and not _is_verb(lower[noun - 1]):
        start = noun - 2
    return " ".join(words[start:noun + 1]), motion


def _tidy_english(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip(" ,;")
    text = re.sub(r"\s+([,.;:!?])", r"\1", text)
    return re.sub(r"([,;])(?=\S)", r"\1 ", text)


# --------------------------------------------------------------------------------------------------
# The refiner
# --------------------------------------------------------------------------------------------------

_SPLIT_RE = re.compile(r"([,;!?\n。、]|\.(?=\s|$))")
_SENTENCE_END = frozenset({".", "!", "?", "。"})


def _normalize(text: str) -> str:
    """Fullwidth forms to ASCII; emoji, symbols and control characters to spaces."""
    text = unicodedata.normalize("NFKC", text)
    return "".join(" " if unicodedata.category(c)[0] == "C" and c != "\n" or unicodedata.category(c) in ("So", "Sk") else c
                   for c in text)


@dataclass
class _Part:
    """One clause of the output sentence."""

    text: str
    sentence_end: bool  # the user ended a sentence after this clause


@dataclass
class _Reading:
    """Everything gathered from the clauses, ready to assemble."""

    parts: list[_Part] = field(default_factory=list)
    hits: list[CameraHit] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    guessed: list[tuple[str, str]] = field(default_factory=list)  # ("隧道", "tunnel"): what the dictionary translated
    still: bool = False
    subject: str = ""
    motion: str = ""


class RuleRefiner:
    """The offline refiner: lexicon + jieba + regular expressions. Deterministic and a few ms per call.

    It writes for one model (`spec`, the default model's when None): the model's prompt budget decides when the
    prompt is too long to be read whole, and its default negative prompt is the one tailored to the scene."""

    name = "rules"

    def __init__(self, spec: ModelSpec | None = None):
        from i2v.refine import target_spec

        self.spec = target_spec(spec)

    def refine(self, text: str, image: Image.Image | None = None) -> RefinedPrompt:
        try:
            return _assemble(_read(text if isinstance(text, str) else str(text or "")), self.spec)
        except Exception as error:  # the fallback of the fallback: a refiner must never block a job
            logging.getLogger(__name__).exception("rule refiner failed")
            return _generic(self.spec, f"rule refiner error ({type(error).__name__}); generic prompt used")


def _generic(spec: ModelSpec, note: str, dropped: list[str] | None = None) -> RefinedPrompt:
    notes = [note, not_understood(dropped)] if dropped else [note]
    prompt = _detailed(GENERIC_PROMPT, [], False, spec)[0] if spec.prompt.form == "detailed" else GENERIC_PROMPT
    return RefinedPrompt(prompt=prompt, negative_prompt=spec.negative_prompt or "", source="rules", notes=notes,
                         dropped=dropped or [])


def _read(text: str) -> _Reading:
    """Split into clauses, take the camera language out of each, and read what is left."""
    reading = _Reading()
    pieces = _SPLIT_RE.split(_normalize(text))
    previous: Clause | None = None
    offset = 0
    for i in range(0, len(pieces), 2):
        raw, delimiter = pieces[i], (pieces[i + 1] if i + 1 < len(pieces) else "")
        base, offset = offset, offset + len(raw) + len(delimiter)
        if not raw.strip():
            continue
        ends_sentence = delimiter in _SENTENCE_END
        has_cjk = bool(_CJK_RE.search(raw))
        cn_hits, rest = _find_cn_camera(raw) if has_cjk else ([], raw)
        en_hits, rest = _find_en_camera(rest)
        for hit in cn_hits + en_hits:
            hit.start += base
        if not has_cjk:
            _read_english(raw, rest, en_hits, ends_sentence, reading)
            previous = None
            continue
        reading.hits += cn_hits + en_hits
        if cn_hits:  # the clause named the camera for its move: a 镜头 left over is not a subject ("镜头仰拍")
            rest = _CN_CAMERA_CONTEXT.sub(lambda m: " " * len(m.group()), rest)
        reading.still |= bool(_STILL_EN.search(_CJK_RE.sub(" ", rest)) or _STILL_CN.search(rest))
        reader = _ClauseReader(_tokens(rest))
        clauses = reader.read()
        reading.guessed += reader.guessed
        for n, clause in enumerate(clauses):
            previous = _add_clause(clause, previous, ends_sentence and n == len(clauses) - 1, reading)
    return reading


def _add_clause(clause: Clause, previous: Clause | None, ends_sentence: bool, reading: _Reading) -> Clause | None:
    """Render a Chinese clause into the reading; returns the clause later subjectless clauses lean on."""
    reading.dropped += clause.dropped
    reading.still |= clause.still
    if not clause.understood():
        return previous
    body, continues = _render_clause(clause, previous)
    if continues and reading.parts:
        reading.parts[-1].text += body
        reading.parts[-1].sentence_end = ends_sentence
    else:
        reading.parts.append(_Part(body, ends_sentence))
    pronoun = _pronoun_for(clause if clause.subject is not None else previous)
    if clause.subject is not None and not reading.subject:
        reading.subject, reading.motion = clause.subject.render(), clause.motion(pronoun)
    elif clause.verbs and not reading.motion:
        reading.motion = clause.motion(pronoun)
    return clause if clause.subject is not None or previous is None else previous


def _read_english(raw: str, rest: str, hits: list[CameraHit], ends_sentence: bool, reading: _Reading) -> None:
    """An English clause is kept as written, unless it is only camera words: those we restate plainly."""
    leftover = [w for w in re.findall(r"[A-Za-z][A-Za-z'-]*", rest.lower()) if w not in _EN_CAMERA_FILLER]
    if hits and not leftover:
        manner = _manner_of(re.sub(r"slow[-\s]?mo(?:tion)?", " ", raw, flags=re.IGNORECASE))
        reading.hits += [CameraHit(h.tag, _with_manner(h.tag, h.phrase, manner), h.start, h.note) for h in hits]
        return
    for hit in hits:
        hit.inline = True
    reading.hits += hits
    if not re.search(r"[A-Za-z]", raw):
        reading.dropped.append(raw.strip())
        return
    kept = _tidy_english(raw)
    reading.still |= bool(_STILL_EN.search(rest))
    if not reading.subject:
        reading.subject, motion = _english_fields(kept)
        reading.motion = reading.motion or motion
    reading.parts.append(_Part(kept, ends_sentence))


def _pronoun_for(clause: Clause | None) -> str:
    return clause.subject.pronoun() if clause is not None and clause.subject is not None else "their"


def _render_clause(clause: Clause, previous: Clause | None) -> tuple[str, bool]:
    """English for one clause, and whether it continues the previous one ("A girl turning her head and smiling")."""
    continues = clause.subject is None and previous is not None and previous.subject is not None
    pieces: list[str] = []
    if clause.subject is not None:
        pieces.append(clause.subject.render())
    if clause.verbs:
        pieces.append(clause.motion(_pronoun_for(clause if clause.subject is not None else previous)))
    pieces += clause.loose + list(dict.fromkeys(clause.envs))
    body = " ".join(p for p in pieces if p)
    if clause.events:
        body = ", ".join(p for p in [body, *clause.events] if p)
    if continues:
        return (" and " if clause.verbs else " ") + body, True
    return body, False


def _tag_group(tag: str | None) -> int:
    """Camera moves first, then tempo, then looping: "..., camera panning to the left, slow motion, seamless loop"."""
    return 0 if tag is None or tag in CAMERA_TAGS else 1 if tag in TEMPO_TAGS else 2


def _assemble(reading: _Reading, spec: ModelSpec) -> RefinedPrompt:
    hits = sorted(reading.hits, key=lambda h: (_tag_group(h.tag), h.start))
    tags = list(dict.fromkeys(h.tag for h in hits if h.tag))
    said = [h.phrase for h in hits if not h.inline]
    notes = list(dict.fromkeys(h.note for h in hits if h.note))
    camera = list(dict.fromkeys(h.phrase if not h.inline else CAMERA_PHRASES.get(h.tag or "", h.phrase) for h in hits))
    if {"pan_left", "pan_right"} <= set(tags) or ("static_camera" in tags and MOVING_TAGS & set(tags)):
        notes.append(f"conflicting camera instructions: {', '.join(tags)}")
    dropped = [d for d in dict.fromkeys(d.strip() for d in reading.dropped) if d]
    looked_up: dict[str, str] = {}
    for word, english in reading.guessed:
        looked_up.setdefault(word, english)
    if looked_up:
        notes.append(f"from the dictionary: {', '.join(f'{w} = {e}' for w, e in looked_up.items())}")
    if dropped:
        notes.append(not_understood(dropped))
    generic_body = not reading.parts and not said
    if generic_body:
        if not tags:
            return _generic(spec, "nothing in the text could be understood; generic prompt used", dropped)
        said = [GENERIC_PROMPT.rstrip(".")]

    prompt = ""
    for i, part in enumerate(reading.parts):
        capitalize = i == 0 or reading.parts[i - 1].sentence_end
        prompt += (part.text[:1].upper() + part.text[1:]) if capitalize else part.text
        if i < len(reading.parts) - 1:
            prompt += ". " if part.sentence_end else ", "
    body = GENERIC_PROMPT if generic_body else prompt
    if said:
        tail = ", ".join(dict.fromkeys(said))
        prompt = f"{prompt.rstrip('.!? ')}, {tail}" if prompt else tail[:1].upper() + tail[1:]
    prompt = re.sub(r"\s+", " ", _CJK_RE.sub(" ", prompt)).strip(" ,;")
    if prompt[-1:] not in (".", "!", "?"):
        prompt += "."
    words, budget = len(prompt.split()), spec.prompt
    if budget.form == "detailed":
        prompt, cut = _detailed(body, hits, reading.still, spec)
        if cut:
            notes.append(
                f"the text does not fit {spec.label}'s {budget.words}-word prompt budget beside its camera and "
                "tempo sentences: its end was cut (edit the prompt to choose what stays)"
            )
    elif budget.words and (words > budget.words or len(prompt) > budget.words * 7):
        read = f"reads {budget.tokens} tokens" if budget.tokens else f"is written for at most {budget.words} words"
        notes.append(f"prompt is {words} words / {len(prompt)} characters: {spec.label} {read}, so the end may be cut off")

    negative = spec.negative_prompt or ""
    if reading.still and negative:
        terms = [t.strip() for t in negative.split(",")]
        negative = ", ".join(t for t in terms if t.lower() not in ("motionless", "static"))
    return RefinedPrompt(
        prompt=prompt if len(prompt) > 1 else GENERIC_PROMPT, negative_prompt=negative, tags=tags,
        subject=reading.subject, motion=reading.motion, camera=", ".join(camera), source="rules", notes=notes,
        settings_hint=settings_hint_for(tags, spec), dropped=dropped, from_dictionary=looked_up,
    )


# --------------------------------------------------------------------------------------------------
# The detailed form (a model that reads hundreds of tokens: Wan 2.2)
# --------------------------------------------------------------------------------------------------

#: Each camera tag as a sentence; {manner} is the user's adverb ("slowly") or nothing. The words of the short
#: form's phrase survive ("camera panning to the left" -> "the camera pans to the left"); nothing is placed in
#: the scene that the image does not hold ("the subject" is whatever the image shows).
DETAILED_CAMERA: dict[str, str] = {
    "pan_left": "The camera {manner}pans to the left across the scene",
    "pan_right": "The camera {manner}pans to the right across the scene",
    "tilt_up": "The camera {manner}tilts up",
    "tilt_down": "The camera {manner}tilts down",
    "zoom_in": "The camera {manner}zooms in, tightening the frame on the subject",
    "zoom_out": "The camera {manner}zooms out, widening the frame around the subject",
    "dolly_in": "The camera {manner}pushes in toward the subject",
    "dolly_out": "The camera {manner}pulls back from the subject, widening the view",
    "orbit_left": "The camera {manner}orbits to the left around the subject",
    "orbit_right": "The camera {manner}orbits to the right around the subject",
    "static_camera": "The camera is static and stays completely still, locked in place",
    "handheld": "The camera is handheld, with a slight, natural shake",
}
#: Camera language without a tag (`CameraHit.tag` None), as a sentence.
DETAILED_SHOTS: dict[str, str] = {
    "tracking shot": "It is a tracking shot, the camera following the subject as it moves",
    "aerial shot": "It is an aerial shot, seen from above",
    "close-up": "It is a close-up",
    "wide shot": "It is a wide shot",
    "first-person view": "It is seen from a first-person view",
    "camera panning": "The camera pans across the scene",
}
DETAILED_TEMPO: dict[str, str] = {
    "slow_motion": "Everything moves in slow motion, each movement drawn out, smooth and fluid",
    "fast_motion": "The action plays in fast motion, sped up, with brisk, quick movement",
    "timelapse": "It is a time-lapse: time passes quickly and the movement flows on steadily",
    "loop": "It is a seamless loop: the motion returns to where it began, so the last frame flows back into the first",
}
#: No tempo tag: a tempo sentence that claims no speed the user did not ask for.
DETAILED_NATURAL = "The movement is smooth and natural and carries on through the whole clip"
#: The user asked for stillness ("一动不动", "a still lake"): nothing is set moving that they did not name.
DETAILED_STILL = "Only what is described moves; the rest of the scene holds still"
DETAILED_NO_CAMERA = "The camera stays still, holding the framing of the image"
DETAILED_LOOK = ("The lighting, colors and style stay as they are in the image, and the subject keeps the same "
                 "appearance throughout, in one continuous shot without cuts")
_CAMERA_MANNER = re.compile(r"^camera (\w+ly) ")


def _camera_sentence(hit: CameraHit) -> str:
    if hit.tag in DETAILED_CAMERA:
        manner = _CAMERA_MANNER.match(hit.phrase)
        text = DETAILED_CAMERA[hit.tag].format(manner=f"{manner.group(1)} " if manner else "")
        if hit.tag in MOVING_TAGS:  # a comma first after an aside: "zooms in, tightening the frame, in one ..."
            move = " in one continuous move" if manner else " in one smooth, continuous move"
            text += ("," if "," in text else "") + move
        return text
    return DETAILED_SHOTS.get(hit.phrase, f"Camera: {hit.phrase}")


def _sentence(text: str) -> str:
    text = re.sub(r"\s+", " ", _CJK_RE.sub(" ", text)).strip(" ,;")
    if not text:
        return ""
    text = text[:1].upper() + text[1:]
    return text if text[-1:] in (".", "!", "?") else text + "."


def _detailed(body: str, hits: list[CameraHit], still: bool, spec: ModelSpec) -> tuple[str, bool]:
    """The structured prompt for a "detailed" spec, and whether the user's own text had to be cut to fit the
    spec's word budget.

    Order: the subject and its action (the short form's text without its camera tail), the manner and tempo, the
    camera, the look of the image. The sentences that claim nothing the tags say ("the camera stays still", the
    look of the image) go first when the budget is tight; those that carry a tag always stay."""
    tagged = [h for h in hits if h.tag is None or h.tag in CAMERA_TAGS]
    camera = list(dict.fromkeys(_camera_sentence(h) for h in tagged)) or [DETAILED_NO_CAMERA]
    tempo = list(dict.fromkeys(DETAILED_TEMPO[h.tag] for h in hits if h.tag in DETAILED_TEMPO))
    manner = tempo or [DETAILED_STILL if still else DETAILED_NATURAL]
    body = _sentence(body)
    # Without a subject ("镜头慢慢推近") the camera move is what the clip is about: it leads.
    order = [body, *manner, *camera] if body else [*camera, *manner]
    sentences = [s for s in (_sentence(s) for s in [*order, DETAILED_LOOK]) if s]
    limit = spec.prompt.words

    def count(items: list[str]) -> int:
        return sum(len(s.split()) for s in items)

    for drop in (None, DETAILED_LOOK, DETAILED_NO_CAMERA, DETAILED_NATURAL, DETAILED_STILL):
        if drop is not None:
            sentences = [s for s in sentences if s != _sentence(drop)]
        if not limit or count(sentences) <= limit:
            return " ".join(sentences), False
    # The user's own text is over the budget: keep its start and every tag's sentence.
    room = limit - count([s for s in sentences if s != body])
    if body and room > 0:
        kept = " ".join(body.split()[:room]).rstrip(",;:.!?") + "."
        return " ".join(kept if s == body else s for s in sentences), True
    words = " ".join(sentences).split()[:limit]  # the tags' sentences alone are over it: a pathological text
    return " ".join(words).rstrip(",;:") + ("" if words[-1][-1:] in ".!?" else "."), True
